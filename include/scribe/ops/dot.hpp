// scribe/ops/dot.hpp — dot: contraction by dimension name.
//
// dot<hidden>(w[hidden, vocab], h[hidden, tokens, batch]) is f32[vocab, tokens, batch].
// dot<head_dim, batched<batch, heads>>(q[batch, heads, tokens, head_dim],
//                                      k[batch, heads, keys, head_dim]) is
//                                      f32[batch, heads, tokens, keys].
// Shape rule: every dimension named in the list is in both operands and is
// contracted; the dimensions in batched<...> are in both operands and are batch
// dimensions; any other dimension the operands share is an error (forgetting to
// rename keys in attention is caught here, not at a later add). The result is
// [batch..., lhs free..., rhs free...] (XLA's order), the batch dimensions in the
// lhs's order; inferred, never written.
//
// When b is a weight stored as q8 (ops/quantize.hpp), a is read as llama.cpp's
// Q8_0 products read their input: quantized in blocks of 32 along the contracted
// elements.
#pragma once

#include <type_traits>

#include "common.hpp"
#include "quantize.hpp"

namespace scribe {

// The batch dimensions of a dot: dot<head_dim, batched<batch, heads>>(q, k).
template <auto... D>
struct batched_dims {};
template <auto... D>
inline constexpr batched_dims<D...> batched{};

namespace detail {
template <class List>
struct batched_of_impl;
template <class... S>
struct batched_of_impl<dims<S...>> {
    static constexpr batched_dims<S{}...> value{};
};
}  // namespace detail

// The batched<...> of a dims<...> list, for generic code:
// dot<head_dim, batched_of<remove_dims<keep_dims<QDims, KDims>, dims<head_dim_t>>>>(q, k).
template <class List>
inline constexpr auto batched_of = detail::batched_of_impl<List>::value;

namespace detail {

template <class X>
struct is_batched : std::false_type {};
template <auto... D>
struct is_batched<batched_dims<D...>> : std::true_type {};

// The dims of a dot's template arguments: the contracted ones (dims) or the batched ones.
template <bool Batched, class... X>
struct dot_dims_impl;
template <bool Batched>
struct dot_dims_impl<Batched> {
    using type = dims<>;
};
template <bool Batched, class H, class... T>
struct dot_dims_impl<Batched, H, T...> {
    using rest = typename dot_dims_impl<Batched, T...>::type;
    using type = std::conditional_t<is_batched<H>::value || Batched, rest, concat_dims<dims<H>, rest>>;
};
template <bool Batched, auto... D, class... T>
struct dot_dims_impl<Batched, batched_dims<D...>, T...> {
    using rest = typename dot_dims_impl<Batched, T...>::type;
    using type = std::conditional_t<Batched, concat_dims<dims<std::remove_cvref_t<decltype(D)>...>, rest>, rest>;
};

}  // namespace detail

template <auto... Args, class TA, class... A, class TB, class... B>
auto dot(const tensor<TA, A...>& a, const tensor<TB, B...>& b) {
    using LA = dims<A...>;
    using LB = dims<B...>;
    using C = typename detail::dot_dims_impl<false, std::remove_cvref_t<decltype(Args)>...>::type;
    using Bt = typename detail::dot_dims_impl<true, std::remove_cvref_t<decltype(Args)>...>::type;
    using Shared = keep_dims<LA, LB>;
    using Missing = typename detail::first_present<remove_dims<C, Shared>, C>::type;
    using MissingBatch = typename detail::first_present<remove_dims<Bt, Shared>, Bt>::type;
    using Unlisted = typename detail::first_present<remove_dims<remove_dims<Shared, C>, Bt>, Shared>::type;
    // The result, also what a rejected dot returns (so that code using it adds no errors).
    using Batch = typename detail::merge_impl<remove_dims<Shared, C>, LB>::type;
    using R = tensor_from<TA, concat_dims<Batch, concat_dims<remove_dims<LA, LB>, remove_dims<LB, LA>>>>;
    if constexpr (!std::is_same_v<TA, TB>) {
        (void)diagnose::dtype_mismatch<op_tag<op::dot>, TA, TB>{};
        return detail::rejected<R>();
    } else if constexpr (!std::is_same_v<Missing, void>) {
        (void)diagnose::dot_cannot_contract<Missing, LA, LB>{};
        // Most often the wrong name for the dimension they share: as if that were contracted.
        return detail::rejected<tensor_from<TA, concat_dims<remove_dims<LA, LB>, remove_dims<LB, LA>>>>();
    } else if constexpr (!all_unique<concat_dims<C, Bt>>) {
        (void)diagnose::duplicate_dimension_in_shape<typename detail::first_duplicate<concat_dims<C, Bt>>::type,
                                                     concat_dims<C, Bt>>{};
        return detail::rejected<R>();
    } else if constexpr (!std::is_same_v<MissingBatch, void>) {
        (void)diagnose::dot_batch_dimension_missing<MissingBatch, LA, LB>{};
        return detail::rejected<R>();
    } else if constexpr (!std::is_same_v<Unlisted, void>) {
        (void)diagnose::dot_shared_dimension_not_batched<Unlisted, LA, LB>{};
        return detail::rejected<R>();
    } else if constexpr (detail::extent_conflict<LA, LB>::value) {
        (void)diagnose::static_extent_conflict<LA, LB>{};
        return detail::rejected<R>();
    } else {
        detail::same_graph(a.owner(), b.owner(), "dot");
        dot_dimensions d{.lhs_contracting = detail::positions<C, LA>(), .rhs_contracting = detail::positions<C, LB>(),
                         .lhs_batch = detail::positions<Batch, LA>(), .rhs_batch = detail::positions<Batch, LB>()};
        // A q8 weight's product reads its input in q8 blocks, as llama.cpp's does (ops/quantize.hpp).
        const auto lhs = q8::input_for_product(a.owner(), a.id(), b.id(), d.lhs_contracting, d.rhs_contracting);
        return R(a.owner(), ir::dot(a.owner(), lhs, b.id(), std::move(d)));
    }
}

}  // namespace scribe
