// scribe/ops/collective.hpp — cross-replica collectives: all_reduce and all_gather,
// and replica_id, the number of the replica running the graph.
//
// A graph with collectives is run by every replica (one per TP rank); replica
// groups say which replicas combine. replica_groups::all(4) is {{0, 1, 2, 3}}.
#pragma once

#include <numeric>
#include <type_traits>
#include <vector>

#include "common.hpp"

namespace scribe {

struct replica_groups {
    std::vector<std::vector<std::int64_t>> groups;

    static replica_groups all(std::int64_t replicas) {
        std::vector<std::int64_t> g(static_cast<std::size_t>(replicas));
        std::iota(g.begin(), g.end(), 0);
        return {{g}};
    }
};

namespace detail {
template <reducer R, class T, class... S>
auto all_reduce_impl(const tensor<T, S...>& x, const replica_groups& groups) {
    node n;
    n.kind = op::all_reduce;
    n.reduction = R;
    n.operands = {x.id()};
    n.replica_groups = groups.groups;
    return emit<T, dims<S...>>(x.owner(), std::move(n));
}
}  // namespace detail

// The element-wise sum (max) of x over the replicas of each group.
template <Tensor X>
auto all_reduce_sum(const X& x, const replica_groups& groups) {
    return detail::all_reduce_impl<reducer::sum>(x, groups);
}
template <Tensor X>
auto all_reduce_max(const X& x, const replica_groups& groups) {
    return detail::all_reduce_impl<reducer::max>(x, groups);
}

// all_gather<vocab>(x, groups): the replicas' x joined along one dimension, in
// replica order within the group; that extent grows by the group size.
template <auto D, class T, class... S>
auto all_gather(const tensor<T, S...>& x, const replica_groups& groups) {
    using L = dims<S...>;
    using Dd = std::remove_cvref_t<decltype(D)>;
    if constexpr (!has_dim<Dd, L>) {
        (void)diagnose::dimension_not_in_tensor<op_tag<op::all_gather>, dim_of<Dd>, L>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        node n;
        n.kind = op::all_gather;
        n.operands = {x.id()};
        n.axes = {static_cast<std::int64_t>(index_of<Dd, L>)};
        n.replica_groups = groups.groups;
        return detail::emit<T, detail::make_dynamic<L, Dd>>(x.owner(), std::move(n));
    }
}

// The number of the replica running the graph, u32[] (HLO's replica-id): lets one
// module serve every TP rank, each picking its own part of a sharded table.
inline auto replica_id(graph& g) {
    node n;
    n.kind = op::replica_id;
    return detail::emit<dtype_of<u32>, dims<>>(g, std::move(n));
}

}  // namespace scribe
