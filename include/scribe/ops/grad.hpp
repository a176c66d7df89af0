// scribe/ops/grad.hpp — gradients in the typed DSL: grad, value_and_grad,
// stop_gradient.
//
//     auto loss = mean<batch>(reduce_sum<out>(err * err));   // a float scalar
//     auto [dw, db] = grad(loss, w, b);   // dw has w's type, db b's
//
// grad appends the backward pass to the loss's graph (graph/grad.hpp), so the
// forward pass, the gradients and what uses them (an optimizer step) are one
// graph. Each gradient has exactly its value's type: tensor_of<f32[hidden, vocab]>
// gives tensor_of<f32[hidden, vocab]>, so it can be applied to that weight and to
// nothing else. A loss that is not a scalar, or a gradient of or with respect to
// an integer or pred tensor, does not compile; a value the loss does not depend
// on is a scribe::error naming it.
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "../graph/grad.hpp"
#include "common.hpp"

namespace scribe {

// x itself, through which no gradient flows: grad treats it as a constant (a
// softmax's running maximum, a target computed from the weights).
template <class T, class... S>
tensor<T, S...> stop_gradient(const tensor<T, S...>& x) {
    node n;
    n.kind = op::stop_gradient;
    n.operands = {x.id()};
    return detail::emit<T, dims<S...>>(x.owner(), std::move(n));
}

namespace detail {

// Whether grad(loss, w...) is well typed: a float scalar loss, float values.
template <class L, class... W>
inline constexpr bool gradient_ok =
    L::rank == 0 && FloatDtype<typename L::dtype_type> && (FloatDtype<typename W::dtype_type> && ...);

// The diagnostic of the first thing wrong with grad(loss, w...).
template <class L, class... W>
void report_gradient_misuse() {
    if constexpr (L::rank != 0) {
        (void)diagnose::loss_not_scalar<typename L::dims_type>{};
    } else if constexpr (!FloatDtype<typename L::dtype_type>) {
        (void)diagnose::gradient_needs_float<diagnose::grad_role::loss, typename L::dtype_type>{};
    } else {
        ([] {  // each value that is not a float
            if constexpr (!FloatDtype<typename W::dtype_type>)
                (void)diagnose::gradient_needs_float<diagnose::grad_role::with_respect_to, typename W::dtype_type>{};
        }(), ...);
    }
}

template <class L, class... W>
std::tuple<W...> gradients_of(const L& loss, const W&... w) {
    graph& g = loss.owner();
    (same_graph(g, w.owner(), "grad"), ...);
    const auto ids = gradients(g, loss.id(), {w.id()...});
    return [&]<std::size_t... K>(std::index_sequence<K...>) {
        return std::tuple<W...>{W(g, ids[K])...};
    }(std::index_sequence_for<W...>{});
}

}  // namespace detail

// dL/dw for each w: one tensor of w's type, or a std::tuple of them for several
// (auto [dw, db] = grad(loss, w, b)). w may be a parameter or any float value the
// loss is computed from.
template <Tensor L, Tensor... W>
    requires(sizeof...(W) > 0)
auto grad(const L& loss, const W&... w) {
    if constexpr (!detail::gradient_ok<L, W...>) {
        detail::report_gradient_misuse<L, W...>();
        if constexpr (sizeof...(W) == 1) return detail::rejected<W...>();
        else return detail::rejected<std::tuple<W...>>();
    } else if constexpr (sizeof...(W) == 1) {
        return std::get<0>(detail::gradients_of(loss, w...));
    } else {
        return detail::gradients_of(loss, w...);
    }
}

// The loss and its gradients, as JAX's value_and_grad: auto [l, dw, db] = value_and_grad(loss, w, b).
template <Tensor L, Tensor... W>
    requires(sizeof...(W) > 0)
auto value_and_grad(const L& loss, const W&... w) {
    if constexpr (!detail::gradient_ok<L, W...>) {
        detail::report_gradient_misuse<L, W...>();
        return detail::rejected<std::tuple<L, W...>>();
    } else {
        return std::tuple_cat(std::tuple<L>(loss), detail::gradients_of(loss, w...));
    }
}

}  // namespace scribe
