// scribe/ops/slicing.hpp — slice, dynamic_slice, dynamic_update_slice, concatenate,
// pad, gather, scatter_add, take: ops that select or place parts of a tensor along
// named dimensions.
//
// A dimension whose extent an op changes keeps its name and loses any static
// extent in the result type (its run-time extent is always known to the graph).
#pragma once

#include <concepts>
#include <iterator>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "common.hpp"

namespace scribe {

namespace detail {

template <class X>
using dtype_t = typename X::dtype_type;

}  // namespace detail

// slice<tokens>(x, start, limit): elements [start, limit) of one dimension.
template <auto D, class T, class... S>
auto slice(const tensor<T, S...>& x, std::int64_t start, std::int64_t limit) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::slice>, dim_of<Dd>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        node n;
        n.kind = op::slice;
        n.operands = {x.id()};
        for (const auto& d : x.shape()) {
            n.starts.push_back(0);
            n.limits.push_back(d.extent);
        }
        n.starts[index_of<Dd, L>] = start;
        n.limits[index_of<Dd, L>] = limit;
        return detail::emit<T, detail::make_dynamic<L, Dd>>(x.owner(), std::move(n));
    }
}

// dynamic_slice<tokens>(x, start, size): `size` elements of one dimension from a
// start computed in the graph (an integer scalar, clamped into range as XLA does).
template <auto D, class T, class... S, class I>
auto dynamic_slice(const tensor<T, S...>& x, const tensor<I>& start, std::int64_t size) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::dynamic_slice>, dim_of<Dd>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!IntegerDtype<I>) {
        (void)diagnose::unsupported_dtype<op_tag<op::dynamic_slice>, I>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        detail::same_graph(x.owner(), start.owner(), "dynamic_slice");
        graph& g = x.owner();
        node n;
        n.kind = op::dynamic_slice;
        n.operands = {x.id()};
        for (std::size_t i = 0; i < sizeof...(S); ++i) {
            const bool here = i == index_of<Dd, L>;
            n.operands.push_back(here ? start.id() : ir::scalar(g, I::id, 0));
            n.limits.push_back(here ? size : x.shape()[i].extent);
        }
        return detail::emit<T, detail::make_dynamic<L, Dd>>(g, std::move(n));
    }
}

// dynamic_update_slice<tokens>(x, update, start): x with `update` written at `start`
// along one dimension (the KV-cache write). update has x's dimensions in any order.
// dynamic_update_slice<batch, keys>(x, update, b, p): starts along several
// dimensions (one row of a batch written at its own position).
template <auto D, auto... More, class T, class... S, class U, class... P, class I, class... Is>
auto dynamic_update_slice(const tensor<T, S...>& x, const tensor<U, P...>& update, const tensor<I>& start,
                          const tensor<Is>&... more) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    static_assert(sizeof...(More) == sizeof...(Is), "dynamic_update_slice: one start per named dimension");
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::dynamic_update_slice>, dim_of<Dd>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!(has_dim<std::remove_cvref_t<decltype(More)>, L> && ...)) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::dynamic_update_slice>,
                                                detail::first_missing<dims<std::remove_cvref_t<decltype(More)>...>, L>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!std::is_same_v<T, U>) {
        (void)diagnose::dtype_mismatch<op_tag<op::dynamic_update_slice>, T, U>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!same_dim_set<L, dims<P...>>) {
        (void)diagnose::update_dims_differ<L, dims<P...>>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!IntegerDtype<I>) {
        (void)diagnose::unsupported_dtype<op_tag<op::dynamic_update_slice>, I>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!(IntegerDtype<Is> && ...)) {
        (void)diagnose::unsupported_dtype<op_tag<op::dynamic_update_slice>, std::tuple<Is...>>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        graph& g = x.owner();
        detail::same_graph(g, update.owner(), "dynamic_update_slice");
        detail::same_graph(g, start.owner(), "dynamic_update_slice");
        (detail::same_graph(g, more.owner(), "dynamic_update_slice"), ...);
        constexpr std::size_t at[] = {index_of<Dd, L>, index_of<std::remove_cvref_t<decltype(More)>, L>...};
        const node_id ids[] = {start.id(), more.id()...};
        auto start_of = [&](std::size_t i) -> std::ptrdiff_t {
            for (std::size_t k = 0; k < std::size(at); ++k)
                if (at[k] == i) return static_cast<std::ptrdiff_t>(k);
            return -1;
        };
        const node_id u = detail::align<L, dims<P...>>(g, update.id());
        for (std::size_t i = 0; i < sizeof...(S); ++i)
            if (start_of(i) < 0 && g[u].dims[i].extent != x.shape()[i].extent)
                throw error("dynamic_update_slice: dimension " + detail::ticked(g[u].dims[i].name) +
                            " has extent " + std::to_string(x.shape()[i].extent) + " in the operand but " +
                            std::to_string(g[u].dims[i].extent) + " in the update");
        node n;
        n.kind = op::dynamic_update_slice;
        n.operands = {x.id(), u};
        for (std::size_t i = 0; i < sizeof...(S); ++i) {
            const auto k = start_of(i);
            n.operands.push_back(k >= 0 ? ids[k] : ir::scalar(g, I::id, 0));
        }
        return detail::emit<T, L>(g, std::move(n));
    }
}

// concatenate<tokens>(a, b, ...): operands with one set of dimensions and dtype,
// joined along one dimension; the result in the first operand's order.
template <auto D, class T, class... S, Tensor... Rest>
auto concatenate(const tensor<T, S...>& first, const Rest&... rest) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::concatenate>, dim_of<Dd>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!(std::is_same_v<T, detail::dtype_t<Rest>> && ...)) {
        (void)diagnose::dtype_mismatch<op_tag<op::concatenate>, T, detail::dtype_t<Rest>...>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!(same_dim_set<L, typename Rest::dims_type> && ...)) {
        (void)diagnose::concatenate_dims_differ<op_tag<op::concatenate>, L, typename Rest::dims_type...>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        graph& g = first.owner();
        (detail::same_graph(g, rest.owner(), "concatenate"), ...);
        node n;
        n.kind = op::concatenate;
        n.operands = {first.id(), detail::align<L, typename Rest::dims_type>(g, rest.id())...};
        n.axes = {static_cast<std::int64_t>(index_of<Dd, L>)};
        return detail::emit<T, detail::make_dynamic<L, Dd>>(g, std::move(n));
    }
}

// pad<tokens>(x, value, low, high): `low` and `high` elements of `value` added at the
// two ends of one dimension (negative amounts remove elements).
template <auto D, class T, class... S>
auto pad(const tensor<T, S...>& x, double value, std::int64_t low, std::int64_t high) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::pad>, dim_of<Dd>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        graph& g = x.owner();
        node n;
        n.kind = op::pad;
        n.operands = {x.id(), ir::scalar(g, T::id, value)};
        n.starts.assign(sizeof...(S), 0);
        n.limits.assign(sizeof...(S), 0);
        n.starts[index_of<Dd, L>] = low;
        n.limits[index_of<Dd, L>] = high;
        return detail::emit<T, detail::make_dynamic<L, Dd>>(g, std::move(n));
    }
}

namespace diagnose::op_name {
struct take;  // names take<D> in diagnostics: composite_op<op_name::take>
}  // namespace diagnose::op_name

namespace detail {

// x without its dimension D, which has extent 1: a reshape (no data moves).
template <class Dd, class T, class... S>
auto drop_unit_dim(const tensor<T, S...>& x) {
    using L = dims<S...>;
    node n;
    n.kind = op::reshape;
    n.operands = {x.id()};
    n.dims = x.shape();
    n.dims.erase(n.dims.begin() + static_cast<std::ptrdiff_t>(index_of<Dd, L>));
    return emit<T, remove_dims<L, dims<Dd>>>(x.owner(), std::move(n));
}

}  // namespace detail

// take<tokens>(x, i): element i of one dimension, which the result no longer has
// (x[hidden, tokens, batch] -> [hidden, batch]; a 1-d x gives a scalar).
// A C++ integer i must lie in [0, extent) (else scribe::error); an integer scalar
// tensor i, computed in the graph, is clamped into [0, extent - 1] as XLA's
// dynamic-slice clamps its start. Lowers to slice (or dynamic-slice) + reshape.
template <auto D, class T, class... S, std::integral N>
auto take(const tensor<T, S...>& x, N i) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<diagnose::composite_op<diagnose::op_name::take>, dim_of<Dd>, L>{};
        return detail::rejected<tensor_from<T, remove_dims<L, dims<Dd>>>>();
    } else {
        const auto extent = x.shape()[index_of<Dd, L>].extent;
        if (!std::in_range<std::int64_t>(i) || static_cast<std::int64_t>(i) < 0 ||
            static_cast<std::int64_t>(i) >= extent)
            throw error("take: index " + std::to_string(i) + " is outside " + detail::ticked(Dd::name()) +
                        " of extent " + std::to_string(extent) + " (an index must be in [0, " +
                        std::to_string(extent) + "))");
        const auto at = static_cast<std::int64_t>(i);
        return detail::drop_unit_dim<dim_of<Dd>>(slice<D>(x, at, at + 1));
    }
}
template <auto D, class T, class... S, class I>
auto take(const tensor<T, S...>& x, const tensor<I>& i) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<diagnose::composite_op<diagnose::op_name::take>, dim_of<Dd>, L>{};
        return detail::rejected<tensor_from<T, remove_dims<L, dims<Dd>>>>();
    } else if constexpr (!IntegerDtype<I>) {
        (void)diagnose::unsupported_dtype<diagnose::composite_op<diagnose::op_name::take>, I>{};
        return detail::rejected<tensor_from<T, remove_dims<L, dims<Dd>>>>();
    } else {
        return detail::drop_unit_dim<dim_of<Dd>>(dynamic_slice<D>(x, i, 1));
    }
}

// gather<vocab>(table, ids): the rows of `table` picked along `vocab` by the integer
// `ids` (an embedding lookup). The result has table's other dimensions, then ids'
// dimensions: gather<vocab>(wte[vocab, hidden], ids[tokens, batch]) is
// [hidden, tokens, batch]. Indices out of range are clamped, as XLA does.
template <auto D, class T, class... S, class I, class... P>
auto gather(const tensor<T, S...>& table, const tensor<I, P...>& ids) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    using Rows = remove_dims<L, dims<Dd>>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::gather>, dim_of<Dd>, L>{};
        return detail::rejected<tensor_from<T, concat_dims<Rows, dims<P...>>>>();
    } else if constexpr (!IntegerDtype<I>) {
        (void)diagnose::unsupported_dtype<op_tag<op::gather>, I>{};
        return detail::rejected<tensor_from<T, concat_dims<Rows, dims<P...>>>>();
    } else if constexpr (!std::is_same_v<first_present_t<dims<P...>, Rows>, void>) {
        (void)diagnose::dimension_already_in_tensor<op_tag<op::gather>, first_present_t<dims<P...>, Rows>, Rows>{};
        return detail::rejected<tensor_from<T, Rows>>();
    } else {
        detail::same_graph(table.owner(), ids.owner(), "gather");
        node n;
        n.kind = op::gather;
        n.operands = {table.id(), ids.id()};
        n.axes = {static_cast<std::int64_t>(index_of<Dd, L>)};
        return detail::emit<T, concat_dims<Rows, dims<P...>>>(table.owner(), std::move(n));
    }
}

// scatter_add<vocab>(table, ids, updates): the transpose of gather<vocab>: table
// with each update added to the row its index picks along `vocab`. `updates` has
// the dimensions of gather<vocab>(table, ids) (table's without `vocab`, then ids'),
// in any order: updates[hidden, tokens, batch] for table[vocab, hidden] and
// ids[tokens, batch]. The result has table's type. Several updates of one row add
// up; an index outside [0, extent) is skipped, as XLA's scatter does (gather
// clamps instead).
template <auto D, class T, class... S, class I, class... P, class U, class... Q>
auto scatter_add(const tensor<T, S...>& table, const tensor<I, P...>& ids, const tensor<U, Q...>& updates) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    using Rows = remove_dims<L, dims<Dd>>;
    using Want = concat_dims<Rows, dims<P...>>;  // gather's result
    using Got = dims<Q...>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::scatter>, dim_of<Dd>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!IntegerDtype<I>) {
        (void)diagnose::unsupported_dtype<op_tag<op::scatter>, I>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!admits(info(op::scatter).operands, T::id)) {
        (void)diagnose::unsupported_dtype<op_tag<op::scatter>, T>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!std::is_same_v<first_present_t<dims<P...>, Rows>, void>) {
        (void)diagnose::dimension_already_in_tensor<op_tag<op::scatter>, first_present_t<dims<P...>, Rows>, Rows>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!std::is_same_v<T, U>) {
        (void)diagnose::dtype_mismatch<op_tag<op::scatter>, T, U>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!same_dim_set<Want, Got>) {
        (void)diagnose::scatter_updates_dims_differ<Want, Got>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (detail::extent_conflict<Want, Got>::value) {
        (void)diagnose::static_extent_conflict<Want, Got>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        graph& g = table.owner();
        detail::same_graph(g, ids.owner(), "scatter_add");
        detail::same_graph(g, updates.owner(), "scatter_add");
        node n;
        n.kind = op::scatter;
        n.operands = {table.id(), ids.id(), detail::align<Want, Got>(g, updates.id())};
        n.axes = {static_cast<std::int64_t>(index_of<Dd, L>)};
        return detail::emit<T, L>(g, std::move(n));
    }
}

}  // namespace scribe
