// scribe/graph/tensor.hpp — the typed handle: a graph pointer and a node id whose
// type carries the dtype and the named dimensions.
//
// Handles are cheap to copy (like XLA's XlaOp); the shape lives in the graph. The
// type is the compile-time view, the node the run-time one; constructing a handle
// checks they agree, so a static extent is verified once, where a value is made.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "graph.hpp"

namespace scribe {

template <DtypeTag T, DimSlot... S>
class tensor {
public:
    using dtype_type = T;
    using dims_type = dims<S...>;
    static constexpr std::size_t rank = sizeof...(S);
    static_assert(tensor_spec<T, S...>::check() || true);  // check() reports a bad shape

    tensor(graph& g, node_id id) : g_(&g), id_(id) { verify(); }

    graph& owner() const { return *g_; }
    node_id id() const { return id_; }
    // The node itself: valid until the next node is added to the graph.
    const node& ir() const { return (*g_)[id_]; }
    // The run-time shape, by value: adding nodes may move the graph's storage.
    scribe::shape shape() const { return ir().dims; }

    // The extent of one of this tensor's dimensions: x.extent(hidden).
    template <DimSlot D>
    std::int64_t extent(D) const {
        if constexpr (!has_dim<D, dims_type>) {
            (void)diagnose::dimension_not_in_tensor<diagnose::composite_op<diagnose::op_name::extent>, dim_of<D>, dims_type>{};
            return 0;
        } else {
            return ir().dims[index_of<D, dims_type>].extent;
        }
    }

private:
    void verify() const {
        const auto& s = shape();
        constexpr std::string_view names[] = {dim_of<S>::name()..., ""};
        constexpr std::int64_t statics[] = {static_extent<S>..., 0};
        if (s.size() != rank || ir().type != T::id)
            throw error("internal: node " + std::to_string(id_) + " is " + std::string(name(ir().type)) +
                        to_string(s) + ", not the handle's type");
        for (std::size_t i = 0; i < rank; ++i) {
            if (s[i].name != names[i])
                throw error("internal: node dimension " + detail::ticked(s[i].name) + " is not " +
                            detail::ticked(names[i]));
            if (statics[i] != dynamic_extent && statics[i] != s[i].extent)
                throw error("dimension " + detail::ticked(names[i]) + " is static with extent " +
                            std::to_string(statics[i]) + " but the value has " + std::to_string(s[i].extent));
        }
    }

    graph* g_;
    node_id id_;
};

template <class X>
struct is_tensor : std::false_type {};
template <class T, class... S>
struct is_tensor<tensor<T, S...>> : std::true_type {};

template <class X>
concept Tensor = is_tensor<std::remove_cvref_t<X>>::value;

// tensor<T, S...> from a dims<S...> list.
template <class T, class List>
struct tensor_from_impl;
template <class T, class... S>
struct tensor_from_impl<T, dims<S...>> {
    using type = tensor<T, S...>;
};
template <class T, class List>
using tensor_from = typename tensor_from_impl<T, List>::type;

// The handle type of a spec: tensor_of<f32[hidden, tokens]>.
template <auto Spec>
using tensor_of = tensor_from<typename decltype(Spec)::dtype_type, typename decltype(Spec)::dims_type>;

namespace detail {

// The run-time shape of a spec: static extents, else the graph's bindings.
template <class... S>
shape spec_shape([[maybe_unused]] const graph& g, [[maybe_unused]] std::string_view context) {
    shape out;
    (out.push_back({std::string(dim_of<S>::name()),
                    static_extent<S> != dynamic_extent ? static_extent<S>
                                                       : g.extent(dim_of<S>::name(), context)}),
     ...);
    return out;
}

// Static extents become bindings, so later dynamic uses of the dimension agree.
template <class... S>
void bind_static([[maybe_unused]] graph& g, [[maybe_unused]] std::string_view context) {
    [[maybe_unused]] auto one = [&](std::string_view dim, std::int64_t extent) {
        if (extent == dynamic_extent) return;
        if (auto bound = g.bound(dim); bound && *bound != extent)
            throw error(std::string(context) + ": dimension " + ticked(dim) + " is static with extent " +
                        std::to_string(extent) + " (" + std::string(dim) + ".of<" + std::to_string(extent) +
                        ">) but the graph binds it to " + std::to_string(*bound));
        g.bind(dim, extent);
    };
    (one(dim_of<S>::name(), static_extent<S>), ...);
}

inline void same_graph(const graph& a, const graph& b, std::string_view op) {
    if (&a != &b)
        throw error(std::string(op) + ": operands belong to different graphs (" + ticked(a.name()) + " and " +
                    ticked(b.name()) + ")");
}

}  // namespace detail

template <DtypeTag T, DimSlot... S>
tensor<T, S...> graph::parameter(tensor_spec<T, S...>, std::string label) {
    const std::string context = "parameter " + detail::ticked(label);
    detail::bind_static<S...>(*this, context);
    auto dims = detail::spec_shape<S...>(*this, context);
    return {*this, add_parameter(T::id, std::move(dims), std::move(label))};
}

template <DtypeTag T, DimSlot... S>
tensor<T, S...> graph::constant(tensor_spec<T, S...>, std::span<const double> values) {
    detail::bind_static<S...>(*this, "constant");
    node n;
    n.kind = op::constant;
    n.type = T::id;
    n.dims = detail::spec_shape<S...>(*this, "constant");
    if (static_cast<std::int64_t>(values.size()) != element_count(n.dims))
        throw error("constant: " + std::string(T::name()) + to_string(n.dims) + " needs " +
                    std::to_string(element_count(n.dims)) + " values, got " + std::to_string(values.size()));
    const auto bytes = static_cast<std::size_t>(info(T::id).bytes);
    n.literal.resize(values.size() * bytes);
    for (std::size_t i = 0; i < values.size(); ++i) store_as(T::id, values[i], n.literal.data() + i * bytes);
    return {*this, add(std::move(n))};
}

template <DtypeTag T>
tensor<T> graph::constant(T, double value) {
    const double v[] = {value};
    return constant(tensor_spec<T>{}, std::span<const double>(v));
}

template <DtypeTag T, DimSlot... S, DimSlot A>
tensor<T, S...> graph::iota(tensor_spec<T, S...>, A) {
    if constexpr (!has_dim<A, dims<S...>>)
        (void)diagnose::dimension_not_in_tensor<op_tag<op::iota>, dim_of<A>, dims<S...>>{};
    if constexpr (std::is_same_v<T, dtype_of<pred>>) (void)diagnose::unsupported_dtype<op_tag<op::iota>, T>{};
    detail::bind_static<S...>(*this, "iota");
    node n;
    n.kind = op::iota;
    n.type = T::id;
    n.dims = detail::spec_shape<S...>(*this, "iota");
    n.axes = {static_cast<std::int64_t>(index_of<A, dims<S...>>)};
    return {*this, add(std::move(n))};
}

template <class T0, class... Ts>
void graph::outputs(const T0& t0, const Ts&... ts) {
    static_assert(Tensor<T0> && (Tensor<Ts> && ...), "[scribe] outputs: pass one or more tensors");
    detail::same_graph(*this, t0.owner(), "outputs");
    (detail::same_graph(*this, ts.owner(), "outputs"), ...);
    set_outputs({t0.id(), ts.id()...});
}

template <class Param>
void graph::alias(std::size_t output, const Param& param) {
    static_assert(Tensor<Param>, "[scribe] alias: pass the parameter tensor");
    detail::same_graph(*this, param.owner(), "alias");
    alias_output(output, param.id());
}

}  // namespace scribe
