// scribe/nn/losses.hpp — losses: scalars to differentiate (ops/grad.hpp).
//
// Both are computed in f32 whatever the inputs' float dtype (f64 stays f64), so a
// bf16 model's loss and its gradient's first step keep f32's precision, as
// PyTorch's autocast keeps losses in f32.
#pragma once

#include <cstdint>
#include <type_traits>

#include "layers.hpp"

namespace scribe::nn {

namespace detail {
// The dtype a loss is computed in: f64 for f64, else f32.
template <class T>
using loss_dtype = std::conditional_t<std::is_same_v<T, dtype_of<f64>>, dtype_of<f64>, dtype_of<f32>>;
}  // namespace detail

namespace detail {
// The logit of each position's label, x[..., label], 0 where the label is outside
// [0, classes). When the classes are x's last dimension and the labels' dims are
// x's others in order (a language model's [batch, seq, vocab] and [batch, seq]),
// a gather from x laid flat at row * classes + label: a read per position, and a
// scatter of one value per position in the backward pass. Otherwise, and when
// rows * classes passes 2^31, a select of the label's class, summed over them.
template <auto Classes, class W, class... S, class I, class... P>
auto picked_logit(const tensor<W, S...>& x, const tensor<I, P...>& labels) {
    using C = std::remove_cvref_t<decltype(Classes)>;
    using L = dims<S...>;
    graph& g = x.owner();
    const auto xs = x.shape();
    const auto rows = element_count(labels.shape());
    const auto classes = xs[index_of<C, L>].extent;
    if constexpr (index_of<C, L> + 1 == sizeof...(S) && std::is_same_v<remove_dims<L, dims<C>>, dims<P...>>) {
        if (rows * classes < (std::int64_t{1} << 31)) {
            node counting;
            counting.kind = op::iota;
            counting.type = dtype::s32;
            counting.dims = {{"rows", rows}};
            counting.axes = {0};
            const auto row = ir::reshape(g, g.add(std::move(counting)), labels.shape());
            const auto label = ir::convert(g, labels.id(), dtype::s32);
            const auto at = ir::binary(g, op::add, ir::binary(g, op::mul, row, static_cast<double>(classes)), label);
            auto picked = ir::gather(g, ir::reshape(g, x.id(), {{"flat", rows * classes}}), at, 0);
            const auto zero = ir::full(g, W::id, labels.shape(), 0.0);
            auto bound = [&](double v) { return ir::full(g, I::id, labels.shape(), v); };
            picked = ir::select(g, ir::compare(g, comparison::ge, labels.id(), bound(0)), picked, zero);
            picked = ir::select(g, ir::compare(g, comparison::lt, labels.id(), bound(static_cast<double>(classes))), picked, zero);
            return tensor<W, P...>(g, picked);
        }
    }
    // The class of each logit, counted in the logits' own shape (a vocabulary
    // gathered over tensor-parallel ranks is wider than the graph's binding).
    node count_classes;
    count_classes.kind = op::iota;
    count_classes.type = I::id;
    count_classes.dims = xs;
    count_classes.axes = {static_cast<std::int64_t>(index_of<C, L>)};
    tensor<I, S...> cls(g, g.add(std::move(count_classes)));
    auto hit = eq(cls, broadcast_to(labels, cls));
    return reduce_sum<Classes>(select(hit, x, broadcast_to(g.constant(W{}, 0.0), x)));
}
}  // namespace detail

// The mean cross-entropy of integer labels under logits over the class dimension
// Classes, over the positions where mask is true:
//   logits[..., Classes], labels[...], mask[...] (pred; the labels' dimensions)
//   loss = sum over unmasked positions of (logsumexp(logits) - logits[label]) / their count
// (0 when every position is masked). The log-sum-exp subtracts the row maximum
// first. A masked position's label is never read, so it may hold anything (the
// -100 of Hugging Face's ignore_index); an unmasked label outside [0, classes)
// picks no logit and counts as logsumexp alone.
template <auto Classes, class T, class... S, class I, class... P, class M, class... Q>
auto cross_entropy(const tensor<T, S...>& logits, const tensor<I, P...>& labels, const tensor<M, Q...>& mask) {
    using Op = diagnose::composite_op<diagnose::op_name::cross_entropy>;
    using C = std::remove_cvref_t<decltype(Classes)>;
    using L = dims<S...>;
    using W = detail::loss_dtype<T>;
    using R = tensor<W>;
    if constexpr (!has_dim<C, L>) {
        (void)diagnose::dimension_not_in_tensor<Op, dim_of<C>, L>{};
        return scribe::detail::rejected<R>();
    } else if constexpr (!FloatDtype<T>) {
        (void)diagnose::unsupported_dtype<Op, T>{};
        return scribe::detail::rejected<R>();
    } else if constexpr (!IntegerDtype<I>) {
        (void)diagnose::unsupported_dtype<Op, I>{};
        return scribe::detail::rejected<R>();
    } else if constexpr (!std::is_same_v<M, dtype_of<pred>>) {
        (void)diagnose::unsupported_dtype<Op, M>{};
        return scribe::detail::rejected<R>();
    } else if constexpr (!same_dim_set<remove_dims<L, dims<C>>, dims<P...>>) {
        (void)diagnose::elementwise_dims_differ<Op, remove_dims<L, dims<C>>, dims<P...>>{};
        return scribe::detail::rejected<R>();
    } else if constexpr (!same_dim_set<dims<P...>, dims<Q...>>) {
        (void)diagnose::elementwise_dims_differ<Op, dims<P...>, dims<Q...>>{};
        return scribe::detail::rejected<R>();
    } else {
        graph& g = logits.owner();
        auto x = convert<W{}>(logits);
        auto top = stop_gradient(reduce_max<Classes>(x));
        auto lse = log(reduce_sum<Classes>(exp(x - broadcast_to(top, x)))) + top;
        auto nll = lse - detail::picked_logit<Classes>(x, labels);
        auto zero = broadcast_to(g.constant(W{}, 0.0), nll);
        auto count = sum_all(convert<W{}>(mask));
        return R(sum_all(select(mask, nll, zero)) / maximum(count, 1.0));
    }
}

// The mean of (a - b)^2 over all elements; a and b have one set of dimensions.
template <class T, class... S, class U, class... P>
auto mean_squared_error(const tensor<T, S...>& a, const tensor<U, P...>& b) {
    using Op = diagnose::composite_op<diagnose::op_name::mean_squared_error>;
    using W = detail::loss_dtype<T>;
    if constexpr (!FloatDtype<T>) {
        (void)diagnose::unsupported_dtype<Op, T>{};
        return scribe::detail::rejected<tensor<W>>();
    } else {
        auto d = convert<W{}>(a) - convert<W{}>(b);
        return sum_all(d * d) / static_cast<double>(element_count(a.shape()));
    }
}

}  // namespace scribe::nn
