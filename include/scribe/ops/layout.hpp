// scribe/ops/layout.hpp — ops that move or rename dimensions: broadcast, transpose,
// rename, split and merge.
#pragma once

#include <type_traits>

#include "common.hpp"

namespace scribe {

namespace detail {

template <class List, class From, class A, class B>
struct split_slots;
template <class... S, class From, class A, class B>
struct split_slots<dims<S...>, From, A, B> {
    template <class X>
    using expand = std::conditional_t<std::is_same_v<dim_of<X>, dim_of<From>>, dims<A, B>, dims<X>>;
    template <class... L>
    struct join;
    template <class L>
    struct join<L> {
        using type = L;
    };
    template <class L1, class L2, class... R>
    struct join<L1, L2, R...> {
        using type = typename join<concat_dims<L1, L2>, R...>::type;
    };
    using type = typename join<dims<>, expand<S>...>::type;
};

}  // namespace detail

// broadcast<tokens, batch>(x): x with new dimensions appended; their extents are
// static or bound on the graph.
template <auto... New, class T, class... S>
auto broadcast(const tensor<T, S...>& x) {
    using L = dims<S...>;
    using N = dims<std::remove_cvref_t<decltype(New)>...>;
    if constexpr (!std::is_same_v<typename detail::first_present<N, L>::type, void>) {
        (void)diagnose::dimension_already_in_tensor<op_tag<op::broadcast>,
                                                     typename detail::first_present<N, L>::type, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (!all_unique<N>) {
        (void)diagnose::duplicate_dimension_in_shape<typename detail::first_duplicate<N>::type, N>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        graph& g = x.owner();
        detail::bind_static<std::remove_cvref_t<decltype(New)>...>(g, "broadcast");
        node n;
        n.kind = op::broadcast;
        n.operands = {x.id()};
        n.dims = x.shape();
        for (auto& d : detail::spec_shape<std::remove_cvref_t<decltype(New)>...>(g, "broadcast")) n.dims.push_back(d);
        for (std::size_t i = 0; i < sizeof...(S); ++i) n.axes.push_back(static_cast<std::int64_t>(i));
        return detail::emit<T, concat_dims<L, N>>(g, std::move(n));
    }
}

// broadcast_to(x, like): x with like's dimensions, in like's order; x's dimensions
// must all be in like (with like's extents).
template <class T, class... S, class U, class... D>
auto broadcast_to(const tensor<T, S...>& x, const tensor<U, D...>& like) {
    using L = dims<S...>;
    using Target = dims<D...>;
    if constexpr (!subset_of<L, Target>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::broadcast>, detail::first_missing<L, Target>, Target>{};
        return detail::rejected<tensor<T, D...>>();
    } else {
        detail::same_graph(x.owner(), like.owner(), "broadcast_to");
        graph& g = x.owner();
        using Kept = keep_dims<Target, L>;  // x's dims in like's order
        node n;
        n.kind = op::broadcast;
        n.operands = {detail::align<Kept, L>(g, x.id())};
        n.dims = like.shape();
        n.axes = detail::positions<Kept, Target>();
        return detail::emit<T, typename detail::merge_impl<Target, L>::type>(g, std::move(n));
    }
}

// transpose<tokens, hidden>(x): the same dimensions in a new order.
template <auto... Order, class T, class... S>
auto transpose(const tensor<T, S...>& x) {
    using L = dims<S...>;
    using O = dims<std::remove_cvref_t<decltype(Order)>...>;
    if constexpr (!same_dim_set<O, L> || !all_unique<O>) {
        (void)diagnose::transpose_not_a_permutation<O, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        using R = typename detail::merge_impl<O, L>::type;
        node n;
        n.kind = op::transpose;
        n.operands = {x.id()};
        n.axes = detail::positions<O, L>();
        return detail::emit<T, R>(x.owner(), std::move(n));
    }
}

// rename<hidden, hidden_out>(x): the same data, one dimension under a new name (a
// square [hidden, hidden] weight needs two names). A static extent carries over.
template <auto From, auto To, class T, class... S>
auto rename(const tensor<T, S...>& x) {
    using L = dims<S...>;
    using F = std::remove_cvref_t<decltype(From)>;
    using Tt = std::remove_cvref_t<decltype(To)>;
    if constexpr (!has_dim<F, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::reshape>, dim_of<F>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (has_dim<Tt, L> && !std::is_same_v<dim_of<F>, dim_of<Tt>>) {
        (void)diagnose::dimension_already_in_tensor<op_tag<op::reshape>, dim_of<Tt>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        constexpr auto stat = static_extent<slot_or_self<F, L>>;
        using NewSlot = std::conditional_t<stat != dynamic_extent && static_extent<Tt> == dynamic_extent,
                                           static_dim<dim_of<Tt>, (stat > 0 ? stat : 1)>, Tt>;
        if constexpr (static_extent<Tt> != dynamic_extent && stat != dynamic_extent && static_extent<Tt> != stat) {
            (void)diagnose::static_extent_conflict<L, dims<Tt>>{};
            return detail::rejected<tensor_from<T, typename detail::replace_impl<L, F, dim_of<Tt>>::type>>();
        } else {
            node n;
            n.kind = op::reshape;
            n.operands = {x.id()};
            n.dims = x.shape();
            auto& d = n.dims[index_of<F, L>];
            if (static_extent<Tt> != dynamic_extent && static_extent<Tt> != d.extent)
                throw error("rename: " + detail::ticked(d.name) + " has extent " + std::to_string(d.extent) +
                            " but " + detail::ticked(Tt::name()) + " is static with " +
                            std::to_string(static_extent<Tt>));
            d.name = std::string(Tt::name());
            return detail::emit<T, typename detail::replace_impl<L, F, NewSlot>::type>(x.owner(), std::move(n));
        }
    }
}

// split<hidden, heads, head_dim>(x): `hidden` becomes `heads` × `head_dim` in place
// (row-major: head_dim varies fastest). One of the two new extents must be known
// (static or bound on the graph); the other is derived and the product checked.
template <auto From, auto A, auto B, class T, class... S>
auto split(const tensor<T, S...>& x) {
    using L = dims<S...>;
    using F = std::remove_cvref_t<decltype(From)>;
    using SA = std::remove_cvref_t<decltype(A)>;
    using SB = std::remove_cvref_t<decltype(B)>;
    constexpr auto ef = static_extent<slot_or_self<F, L>>;
    constexpr auto ea = static_extent<SA>;
    constexpr auto eb = static_extent<SB>;
    if constexpr (!has_dim<F, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::reshape>, dim_of<F>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr ((has_dim<SA, L> && !std::is_same_v<dim_of<SA>, dim_of<F>>) ||
                         (has_dim<SB, L> && !std::is_same_v<dim_of<SB>, dim_of<F>>) ||
                         std::is_same_v<dim_of<SA>, dim_of<SB>>) {
        (void)diagnose::dimension_already_in_tensor<op_tag<op::reshape>, dims<SA, SB>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr ((ef != dynamic_extent && ea != dynamic_extent && eb != dynamic_extent && ea * eb != ef) ||
                         (ef != dynamic_extent && ea != dynamic_extent && ef % ea != 0) ||
                         (ef != dynamic_extent && eb != dynamic_extent && ef % eb != 0)) {
        (void)diagnose::extents_do_not_multiply_out<slot_or_self<F, L>, dims<SA, SB>,
                                                    std::integer_sequence<std::int64_t, ef, ea, eb>>{};
        return detail::rejected<tensor_from<T, typename detail::split_slots<L, F, dim_of<SA>, dim_of<SB>>::type>>();
    } else {
        graph& g = x.owner();
        const auto pos = index_of<F, L>;
        const auto total = x.shape()[pos].extent;
        auto known = [&](auto slot) -> std::int64_t {
            using X = decltype(slot);
            if constexpr (static_extent<X> != dynamic_extent)
                return static_extent<X>;
            else
                return g.bound(X::name()).value_or(0);
        };
        std::int64_t a = known(SA{}), b = known(SB{});
        if (a == 0 && b == 0)
            throw error("split: neither " + detail::ticked(SA::name()) + " nor " + detail::ticked(SB::name()) +
                        " has an extent; give one a static extent or bind it");
        if (a == 0 && total % b == 0) a = total / b;
        if (b == 0 && total % a == 0) b = total / a;
        if (a == 0 || b == 0 || a * b != total)
            throw error("split: " + detail::ticked(F::name()) + " (" + std::to_string(total) +
                        ") cannot be split into " + detail::ticked(SA::name()) + " (" +
                        (a ? std::to_string(a) : std::string("?")) + ") x " + detail::ticked(SB::name()) +
                        " (" + (b ? std::to_string(b) : std::string("?")) + ")");
        node n;
        n.kind = op::reshape;
        n.operands = {x.id()};
        n.dims = x.shape();
        n.dims[pos] = {std::string(SA::name()), a};
        n.dims.insert(n.dims.begin() + static_cast<std::ptrdiff_t>(pos) + 1, dim_extent{std::string(SB::name()), b});
        return detail::emit<T, typename detail::split_slots<L, F, SA, SB>::type>(g, std::move(n));
    }
}

// merge<heads, head_dim, hidden>(x): `heads` × `head_dim` become `hidden` at the
// place of `heads` (head_dim varies fastest); head_dim is moved next to heads first
// when it is elsewhere.
template <auto A, auto B, auto To, class T, class... S>
auto merge(const tensor<T, S...>& x) {
    using L = dims<S...>;
    using SA = std::remove_cvref_t<decltype(A)>;
    using SB = std::remove_cvref_t<decltype(B)>;
    using Tt = std::remove_cvref_t<decltype(To)>;
    constexpr auto ea = static_extent<slot_or_self<SA, L>>;
    constexpr auto eb = static_extent<slot_or_self<SB, L>>;
    constexpr auto et = static_extent<Tt>;
    if constexpr (!has_dim<SA, L> || !has_dim<SB, L> || std::is_same_v<dim_of<SA>, dim_of<SB>>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::reshape>, dims<SA, SB>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (has_dim<Tt, L> && !std::is_same_v<dim_of<Tt>, dim_of<SA>> &&
                         !std::is_same_v<dim_of<Tt>, dim_of<SB>>) {
        (void)diagnose::dimension_already_in_tensor<op_tag<op::reshape>, dim_of<Tt>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else if constexpr (ea != dynamic_extent && eb != dynamic_extent && et != dynamic_extent && ea * eb != et) {
        (void)diagnose::extents_do_not_multiply_out<dims<SA, SB>, Tt,
                                                    std::integer_sequence<std::int64_t, ea, eb, et>>{};
        return detail::rejected<tensor_from<T, typename detail::replace_impl<remove_dims<L, dims<SB>>, SA, dim_of<Tt>>::type>>();
    } else {
        graph& g = x.owner();
        // Bring B right after A.
        using Rest = remove_dims<L, dims<SB>>;
        using Ordered = typename detail::split_slots<Rest, SA, slot_in<SA, L>, slot_in<SB, L>>::type;
        const node_id aligned = detail::align<Ordered, L>(g, x.id());
        const auto& src = g[aligned].dims;
        const auto pos = index_of<SA, Ordered>;
        const auto total = src[pos].extent * src[pos + 1].extent;
        if (et != dynamic_extent && et != total)
            throw error("merge: " + detail::ticked(SA::name()) + " x " + detail::ticked(SB::name()) + " (" +
                        std::to_string(total) + ") does not make " + detail::ticked(Tt::name()) + " (" +
                        std::to_string(et) + ")");
        node n;
        n.kind = op::reshape;
        n.operands = {aligned};
        n.dims = src;
        n.dims[pos] = {std::string(Tt::name()), total};
        n.dims.erase(n.dims.begin() + static_cast<std::ptrdiff_t>(pos) + 1);
        return detail::emit<T, typename detail::replace_impl<Rest, SA, Tt>::type>(g, std::move(n));
    }
}

}  // namespace scribe
