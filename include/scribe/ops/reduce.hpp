// scribe/ops/reduce.hpp — reductions over named dimensions, mean, argmax, and the
// softmax family composed from them.
//
// Shape rule: the named dimensions are removed; naming one the tensor lacks does
// not compile.
#pragma once

#include <type_traits>

#include "elementwise.hpp"
#include "grad.hpp"
#include "layout.hpp"

namespace scribe {

namespace detail {

template <reducer R, op K, class Red, class T, class... S>
auto reduce_impl(const tensor<T, S...>& x) {
    using L = dims<S...>;
    if constexpr (std::is_same_v<Red, dims<>>) {
        (void)diagnose::no_dimension_named<op_tag<K>>{};
        return detail::rejected<tensor_from<std::conditional_t<K == op::argmax, dtype_of<s32>, T>, remove_dims<L, Red>>>();
    } else if constexpr (!std::is_same_v<first_missing<Red, L>, void>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<K>, first_missing<Red, L>, L>{};
        return detail::rejected<tensor_from<std::conditional_t<K == op::argmax, dtype_of<s32>, T>, remove_dims<L, Red>>>();
    } else if constexpr (!all_unique<Red>) {
        (void)diagnose::duplicate_dimension_in_shape<typename first_duplicate<Red>::type, Red>{};
        return detail::rejected<tensor_from<std::conditional_t<K == op::argmax, dtype_of<s32>, T>, remove_dims<L, Red>>>();
    } else if constexpr (K == op::argmax && Red::rank != 1) {
        (void)diagnose::no_dimension_named<op_tag<K>>{};
        return detail::rejected<tensor_from<std::conditional_t<K == op::argmax, dtype_of<s32>, T>, remove_dims<L, Red>>>();
    } else {
        node n;
        n.kind = K;
        n.reduction = R;
        n.operands = {x.id()};
        n.axes = positions<Red, L>();
        using Out = std::conditional_t<K == op::argmax, dtype_of<s32>, T>;
        return emit<Out, remove_dims<L, Red>>(x.owner(), std::move(n));
    }
}

}  // namespace detail

// reduce_sum<tokens>(x), reduce_max<...>, reduce_min<...>: over one or more dimensions.
template <auto... D, Tensor X>
auto reduce_sum(const X& x) {
    return detail::reduce_impl<reducer::sum, op::reduce, dims<std::remove_cvref_t<decltype(D)>...>>(x);
}
template <auto... D, Tensor X>
auto reduce_max(const X& x) {
    return detail::reduce_impl<reducer::max, op::reduce, dims<std::remove_cvref_t<decltype(D)>...>>(x);
}
template <auto... D, Tensor X>
auto reduce_min(const X& x) {
    return detail::reduce_impl<reducer::min, op::reduce, dims<std::remove_cvref_t<decltype(D)>...>>(x);
}

// mean<hidden>(x): the sum divided by the number of elements reduced (floats only).
template <auto... D, class T, class... S>
auto mean(const tensor<T, S...>& x) {
    using L = dims<S...>;
    using Red = dims<std::remove_cvref_t<decltype(D)>...>;
    using Op = diagnose::composite_op<diagnose::op_name::mean>;
    using R = tensor_from<T, remove_dims<L, Red>>;
    if constexpr (std::is_same_v<Red, dims<>>) {
        (void)diagnose::no_dimension_named<Op, L>{};
        return detail::rejected<R>();
    } else if constexpr (!std::is_same_v<detail::first_missing<Red, L>, void>) {
        (void)diagnose::dimension_not_in_tensor<Op, detail::first_missing<Red, L>, L>{};
        return detail::rejected<R>();
    } else if constexpr (!FloatDtype<T>) {
        (void)diagnose::unsupported_dtype<Op, T>{};
        return detail::rejected<R>();
    } else {
        auto s = reduce_sum<D...>(x);
        std::int64_t count = 1;
        ((count *= x.extent(D)), ...);
        return s * (1.0 / static_cast<double>(count));
    }
}

// sum_all(x): the sum of all of x's elements, a scalar (a loss, a count).
template <class T, class... S>
auto sum_all(const tensor<T, S...>& x) {
    if constexpr (sizeof...(S) == 0) return x;
    else return detail::reduce_impl<reducer::sum, op::reduce, dims<S...>>(x);
}

// argmax<vocab>(x): the s32 index of the largest element along one dimension (the
// first one on ties).
template <auto D, Tensor X>
auto argmax(const X& x) {
    return detail::reduce_impl<reducer::max, op::argmax, dims<std::remove_cvref_t<decltype(D)>>>(x);
}

namespace detail {

// softmax and log_softmax: D and the dtype checked under the op's own name (not as
// the reduce they are made of), then body(x).
template <class Name, auto D, class T, class... S, class Body>
auto softmax_like(const tensor<T, S...>& x, Body body) {
    using Op = diagnose::composite_op<Name>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    if constexpr (!has_dim<Dd, dims<S...>>) {
        (void)diagnose::dimension_not_in_tensor<Op, dim_of<Dd>, dims<S...>>{};
        return rejected<tensor<T, S...>>();
    } else if constexpr (!FloatDtype<T>) {
        (void)diagnose::unsupported_dtype<Op, T>{};
        return rejected<tensor<T, S...>>();
    } else {
        return body(x);
    }
}

}  // namespace detail

// softmax<vocab>(x) = exp(x - max) / sum(exp(x - max)), stable for large inputs.
// The result does not depend on the maximum subtracted, so no gradient flows
// through it (stop_gradient, as JAX's softmax): the backward pass stays two
// reductions instead of three.
template <auto D, class T, class... S>
auto softmax(const tensor<T, S...>& x) {
    return detail::softmax_like<diagnose::op_name::softmax, D>(x, [](const auto& v) {
        auto e = exp(v - broadcast_to(stop_gradient(reduce_max<D>(v)), v));
        return e / broadcast_to(reduce_sum<D>(e), e);
    });
}

// log_softmax<vocab>(x) = (x - max) - log(sum(exp(x - max))).
template <auto D, class T, class... S>
auto log_softmax(const tensor<T, S...>& x) {
    return detail::softmax_like<diagnose::op_name::log_softmax, D>(x, [](const auto& v) {
        auto shifted = v - broadcast_to(stop_gradient(reduce_max<D>(v)), v);
        return shifted - broadcast_to(log(reduce_sum<D>(exp(shifted))), shifted);
    });
}

}  // namespace scribe
