// scribe/ops/common.hpp — what every op family shares: the op tag that names an op
// in diagnostics, and the helpers that append a node and wrap it in a typed handle.
#pragma once

#include <array>
#include <cstdint>
#include <exception>
#include <utility>
#include <vector>

#include "../graph/ir.hpp"
#include "../graph/tensor.hpp"

namespace scribe {

namespace detail {

// What an op returns after its diagnostic has rejected its operands: the
// compilation has already failed, so this never runs. It gives the call the type
// the op would have had, so code that uses the result adds no follow-on errors.
template <class R>
[[noreturn]] R rejected() {
    std::terminate();
}

// Appends `n` to `g` and returns it as a tensor<T, List...>.
template <class T, class List>
tensor_from<T, List> emit(graph& g, node n) {
    return tensor_from<T, List>(g, g.add(std::move(n)));
}

// For each slot of Target, its position in Source: the permutation that brings a
// tensor with dims Source into the order of Target.
template <class Target, class Source>
struct positions_impl;
template <class... T, class Source>
struct positions_impl<dims<T...>, Source> {
    static std::vector<std::int64_t> get() { return {static_cast<std::int64_t>(index_of<T, Source>)...}; }
};
template <class Target, class Source>
std::vector<std::int64_t> positions() {
    return positions_impl<Target, Source>::get();
}

// x (whose dims are the set of Target, in the order Source) in Target's order.
template <class Target, class Source>
node_id align(graph& g, node_id x) {
    return ir::transpose(g, x, positions<Target, Source>());
}

}  // namespace detail
}  // namespace scribe
