// scribe/ops/dot.hpp — dot: contraction by dimension name.
//
// dot<hidden>(w[hidden, vocab], h[hidden, tokens, batch]) is f32[vocab, tokens, batch].
// Shape rule: every named dimension is in both operands and is contracted; every
// other dimension the operands share is a batch dimension; the result is
// [batch..., lhs free..., rhs free...] (XLA's order), inferred, never written.
#pragma once

#include <type_traits>

#include "common.hpp"

namespace scribe {

template <auto... Contract, class TA, class... A, class TB, class... B>
auto dot(const tensor<TA, A...>& a, const tensor<TB, B...>& b) {
    using LA = dims<A...>;
    using LB = dims<B...>;
    using C = dims<std::remove_cvref_t<decltype(Contract)>...>;
    using Missing = typename detail::first_present<remove_dims<C, keep_dims<LA, LB>>, C>::type;
    if constexpr (!std::is_same_v<TA, TB>) {
        (void)diagnose::dtype_mismatch<op_tag<op::dot>, TA, TB>{};
    } else if constexpr (!std::is_same_v<Missing, void>) {
        (void)diagnose::dot_cannot_contract<Missing, LA, LB>{};
    } else if constexpr (!all_unique<C>) {
        (void)diagnose::duplicate_dimension_in_shape<typename detail::first_duplicate<C>::type, C>{};
    } else if constexpr (detail::extent_conflict<LA, LB>::value) {
        (void)diagnose::static_extent_conflict<LA, LB>{};
    } else {
        detail::same_graph(a.owner(), b.owner(), "dot");
        using Shared = keep_dims<LA, LB>;
        using Batch = typename detail::merge_impl<remove_dims<Shared, C>, LB>::type;
        using FreeA = remove_dims<LA, LB>;
        using FreeB = remove_dims<LB, LA>;
        using R = concat_dims<Batch, concat_dims<FreeA, FreeB>>;
        node n;
        n.kind = op::dot;
        n.operands = {a.id(), b.id()};
        n.dot.lhs_contracting = detail::positions<C, LA>();
        n.dot.rhs_contracting = detail::positions<C, LB>();
        n.dot.lhs_batch = detail::positions<Batch, LA>();
        n.dot.rhs_batch = detail::positions<Batch, LB>();
        return detail::emit<TA, R>(a.owner(), std::move(n));
    }
}

}  // namespace scribe
