// scribe/ops/random.hpp — counter-based random numbers: Threefry-2x32, written
// with u32 graph ops (add, xor, shifts, or), so the CPU backend and XLA compute
// the same bits by construction.
//
//     random_key key(g, 42);                                 // as jax.random.key(42)
//     auto bits = random_bits(key, u32[batch, vocab]);       // u32[batch, vocab]
//     auto u = random_uniform(key, f32[batch, vocab], 4096); // f32 in [0, 1), counters from 4096
//     auto v = random_uniform(key, logits, step);            // logits' dims and dtype; a u32 scalar offset
//     auto w16 = stochastic_round_bf16(key, w32, step);     // f32 -> bf16, unbiased
//
// Counters: element p of a call (its row-major position in the result) has the
// 64-bit counter c = offset + p. Its bits are Threefry-2x32 with 20 rounds
// (Salmon et al. 2011; the rotations, key schedule and injections of JAX's
// threefry2x32) of the key and the counter's words (c >> 32, c & 0xffffffff), the
// two output words xored. A call uses the counters [offset, offset + n): calls
// whose ranges do not overlap give independent bits (n numbers per decode step s:
// offset s * n), and the same key, offset and shape give the same bits. With
// offset 0 the results are jax.random.bits(key, shape, uint32) and
// jax.random.uniform(key, shape, dtype) bit for bit, with JAX's partitionable
// Threefry (jax_threefry_partitionable, the default of current JAX).
//
// random_uniform keeps JAX's mantissa bits: f32 takes the top 23 of the 32 bits;
// f16 the top 10 of the low 16; bf16 the top 7 of the low 8; f64 the top 52 of
// the two words (first << 32 | second) before they are xored. The value is
// 1.mantissa - 1, exact in the dtype, so never 1.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "bitwise.hpp"
#include "elementwise.hpp"

namespace scribe {

namespace diagnose::op_name {
struct random_bits;     // names random_bits in diagnostics: composite_op<op_name::random_bits>
struct random_uniform;  // ... and random_uniform
}  // namespace diagnose::op_name

// A Threefry key: two u32 scalars of one graph (JAX's key data [k0, k1]).
struct random_key {
    tensor<dtype_of<u32>> k0, k1;

    // As jax.random.key(seed): k0 is the seed's high 32 bits, k1 its low 32 bits.
    random_key(graph& g, std::uint64_t seed)
        : k0(g.constant(u32, static_cast<double>(seed >> 32))), k1(g.constant(u32, static_cast<double>(seed & 0xffffffffu))) {}
    // Words computed in the graph or given as parameters: a seed that changes from
    // run to run without a new graph.
    random_key(const tensor<dtype_of<u32>>& key0, const tensor<dtype_of<u32>>& key1) : k0(key0), k1(key1) {
        detail::same_graph(k0.owner(), k1.owner(), "random_key");
    }
};

// Where a call's counters start: a number, or a u32 scalar of the graph (a step
// counter given as a parameter).
struct random_offset {
    std::uint64_t value = 0;
    std::optional<tensor<dtype_of<u32>>> at;

    random_offset(std::uint64_t v = 0) : value(v) {}
    random_offset(const tensor<dtype_of<u32>>& t) : at(t) {}
};

namespace detail {

using u32_tag = dtype_of<u32>;

template <class... S>
using u32_tensor = tensor<u32_tag, S...>;

// Threefry-2x32, 20 rounds, of the counter words (x0, x1) under `key`: both
// output words.
template <class... S>
std::pair<u32_tensor<S...>, u32_tensor<S...>> threefry_2x32(const random_key& key, u32_tensor<S...> x0, u32_tensor<S...> x1) {
    graph& g = x0.owner();
    constexpr int rotations[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
    const tensor<u32_tag> ks[3] = {key.k0, key.k1, key.k0 ^ key.k1 ^ 0x1BD11BDA};
    // Each shift amount is made once, broadcast to the shape, and shared by the rounds.
    std::map<int, u32_tensor<S...>> amounts;
    auto amount = [&](int r) {
        auto it = amounts.find(r);
        if (it == amounts.end()) {
            const auto id = ir::broadcast(g, ir::scalar(g, dtype::u32, r), x0.shape(), {});
            it = amounts.emplace(r, u32_tensor<S...>(g, id)).first;
        }
        return it->second;
    };
    x0 = x0 + ks[0];
    x1 = x1 + ks[1];
    for (int group = 1; group <= 5; ++group) {
        for (int r : rotations[(group - 1) % 2]) {
            x0 = x0 + x1;
            // One statement per node: the graph (and its HLO) is the same whatever
            // order a compiler evaluates function arguments in.
            const auto left = shift_left(x1, amount(r));
            const auto right = shift_right_logical(x1, amount(32 - r));
            x1 = (left | right) ^ x0;
        }
        x0 = x0 + ks[group % 3];
        x1 = x1 + (ks[(group + 1) % 3] + group);
    }
    return {x0, x1};
}

// The Threefry output words of every element of `dims` (the result's shape,
// static slots S...): counters offset + row-major position.
template <class... S>
std::pair<u32_tensor<S...>, u32_tensor<S...>> random_words(const random_key& key, const shape& dims,
                                                          const random_offset& offset, std::string_view op) {
    graph& g = key.k0.owner();
    const auto count = element_count(dims);
    if (count > (std::int64_t{1} << 32))
        throw error(std::string(op) + ": " + to_string(dims) + " has " + std::to_string(count) +
                    " elements, more than 2^32 (one call's positions are u32); make several calls with offsets");
    if (offset.at) same_graph(g, offset.at->owner(), op);
    auto full = [&](double v) { return u32_tensor<S...>(g, ir::broadcast(g, ir::scalar(g, dtype::u32, v), dims, {})); };
    // The position: the sum of each dimension's index times its stride.
    std::optional<u32_tensor<S...>> position;
    std::int64_t stride = 1;
    for (std::size_t k = dims.size(); k-- > 0;) {
        if (dims[k].extent > 1) {
            node n;
            n.kind = op::iota;
            n.type = dtype::u32;
            n.dims = dims;
            n.axes = {static_cast<std::int64_t>(k)};
            u32_tensor<S...> i(g, g.add(std::move(n)));
            if (stride > 1) i = i * static_cast<double>(stride);
            position = position ? *position + i : i;
        }
        stride *= dims[k].extent;
    }
    const auto p = position ? *position : full(0);
    // The counter's low word wraps where the offset's low word plus the position
    // passes 2^32; the high word then takes the carry.
    const std::uint64_t low = offset.value & 0xffffffffu;
    const auto lo = offset.at ? p + *offset.at : low ? p + static_cast<double>(low) : p;
    auto hi = full(static_cast<double>(offset.value >> 32));
    if (offset.at || low + static_cast<std::uint64_t>(count - 1) > 0xffffffffu) hi = hi + convert<u32>(lt(lo, p));
    return threefry_2x32(key, hi, lo);
}

template <class... S>
shape random_spec_shape(graph& g, std::string_view op) {
    bind_static<S...>(g, op);
    return spec_shape<S...>(g, op);
}

// Floats in [0, 1) of dtype T from the words, JAX's way (see the header comment).
template <class T, class... S>
tensor<T, S...> uniform_from(const std::pair<u32_tensor<S...>, u32_tensor<S...>>& words) {
    const auto& [first, second] = words;
    if constexpr (T::id == dtype::f64) {
        const auto high = shift_left(convert<s64>(first), 32);
        const auto bits = high | convert<s64>(second);
        const auto one_and_mantissa = shift_right_logical(bits, 12) | 0x3FF0000000000000;  // 1.0's bits
        return bitcast_convert<f64>(one_and_mantissa) - 1.0;
    } else {
        constexpr int mantissa = T::id == dtype::f32 ? 23 : T::id == dtype::f16 ? 10 : 7;
        constexpr int taken = T::id == dtype::f32 ? 32 : T::id == dtype::f16 ? 16 : 8;  // the low bits JAX draws
        auto bits = first ^ second;
        if constexpr (taken < 32) bits = bits & ((1u << taken) - 1);
        bits = shift_right_logical(bits, taken - mantissa);
        if constexpr (mantissa < 23) bits = shift_left(bits, 23 - mantissa);
        const auto value = bitcast_convert<f32>(bits | 0x3f800000) - 1.0;  // exact in T: converted without rounding
        if constexpr (T::id == dtype::f32) return value;
        else return convert<T{}>(value);
    }
}

}  // namespace detail

// random_bits(key, u32[batch, vocab], offset): u32 random bits of the spec's shape.
template <class T, class... S>
auto random_bits(const random_key& key, tensor_spec<T, S...>, random_offset offset = {}) {
    if constexpr (!std::is_same_v<T, dtype_of<u32>>) {
        (void)diagnose::unsupported_dtype<diagnose::composite_op<diagnose::op_name::random_bits>, T>{};
        return detail::rejected<tensor<dtype_of<u32>, S...>>();
    } else {
        const auto dims = detail::random_spec_shape<S...>(key.k0.owner(), "random_bits");
        const auto [first, second] = detail::random_words<S...>(key, dims, offset, "random_bits");
        return first ^ second;
    }
}

// random_bits(key, x, offset): u32 random bits with x's dimensions.
template <class T, class... S>
auto random_bits(const random_key& key, const tensor<T, S...>& like, random_offset offset = {}) {
    detail::same_graph(key.k0.owner(), like.owner(), "random_bits");
    const auto [first, second] = detail::random_words<S...>(key, like.shape(), offset, "random_bits");
    return first ^ second;
}

// random_uniform(key, f32[batch, vocab], offset): floats in [0, 1) of the spec's
// dtype (f16, bf16, f32, f64) and shape.
template <class T, class... S>
auto random_uniform(const random_key& key, tensor_spec<T, S...>, random_offset offset = {}) {
    if constexpr (!FloatDtype<T>) {
        (void)diagnose::unsupported_dtype<diagnose::composite_op<diagnose::op_name::random_uniform>, T>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        const auto dims = detail::random_spec_shape<S...>(key.k0.owner(), "random_uniform");
        return detail::uniform_from<T, S...>(detail::random_words<S...>(key, dims, offset, "random_uniform"));
    }
}

// random_uniform(key, x, offset): floats in [0, 1) with x's dimensions and dtype.
template <class T, class... S>
auto random_uniform(const random_key& key, const tensor<T, S...>& like, random_offset offset = {}) {
    if constexpr (!FloatDtype<T>) {
        (void)diagnose::unsupported_dtype<diagnose::composite_op<diagnose::op_name::random_uniform>, T>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        detail::same_graph(key.k0.owner(), like.owner(), "random_uniform");
        return detail::uniform_from<T, S...>(detail::random_words<S...>(key, like.shape(), offset, "random_uniform"));
    }
}

// stochastic_round_bf16(key, x, offset): x (f32) rounded to bf16 down or up at
// random, up with probability (x - below) / (above - below), so that the mean of
// the roundings is x (unbiased, where rounding to nearest loses every update
// smaller than half a bf16 step). The low 16 bits of random_bits(key, x, offset)
// are added to x's bits below bf16's mantissa and the sum is truncated, as
// PyTorch/XLA's stochastic rounding does; the additions of the counters' bits
// are integer ops, so the CPU and XLA round identically. A bf16 value stays
// itself, an infinity stays infinite, a NaN stays NaN; a value within a step of
// bf16's largest may round to infinity, with that probability.
//
// stochastic_round_bf16(x, noise) rounds with given bits instead: the low 16
// bits of each element of noise (u32, x's shape) are the ones added. (The
// optimizer draws them from a table of Threefry bits made once a step: Threefry
// per element of every weight costs far more than the step's update.)
template <class... S>
auto stochastic_round_bf16(const tensor<dtype_of<f32>, S...>& x, const tensor<dtype_of<u32>, S...>& noise) {
    detail::same_graph(x.owner(), noise.owner(), "stochastic_round_bf16");
    const auto truncated = bitcast_convert<f32>((bitcast_convert<u32>(x) + (noise & 0xFFFFu)) & 0xFFFF0000u);
    return convert<bf16>(select(ne(x, x), x, truncated));  // a NaN's payload may lie in the low bits
}
// The x and noise of stochastic_round_bf16(x, noise) when node `id` is the
// result of its rule (the convert to bf16), else nullopt: the CPU runs the rule
// as one pass (its integer ops would each be a pass of their own otherwise).
struct stochastic_round_operands {
    node_id x, noise;
};
inline std::optional<stochastic_round_operands> match_stochastic_round(const graph& g, node_id id) {
    auto is = [&](node_id n, op k, dtype t) { return g[n].kind == k && g[n].type == t; };
    auto operand = [&](node_id n, std::size_t i) { return g[n].operands.at(i); };
    auto constant = [&](node_id n, double v) {  // a u32 constant, or its broadcast
        if (is(n, op::broadcast, dtype::u32) && g[n].axes.empty()) n = operand(n, 0);
        return is(n, op::constant, dtype::u32) && g[n].literal.size() == 4 && load_as_double(dtype::u32, g[n].literal.data()) == v;
    };
    if (!is(id, op::convert, dtype::bf16)) return std::nullopt;
    const auto chosen = operand(id, 0);  // select(ne(x, x), x, truncated)
    if (!is(chosen, op::select, dtype::f32)) return std::nullopt;
    const auto nan = operand(chosen, 0), x = operand(chosen, 1), truncated = operand(chosen, 2);
    if (g[nan].kind != op::compare || g[nan].direction != comparison::ne || operand(nan, 0) != x || operand(nan, 1) != x) return std::nullopt;
    if (g[x].dims != g[id].dims || !is(truncated, op::bitcast_convert, dtype::f32)) return std::nullopt;
    const auto masked = operand(truncated, 0);  // (bits(x) + (noise & 0xFFFF)) & 0xFFFF0000
    if (!is(masked, op::bitwise_and, dtype::u32) || !constant(operand(masked, 1), 4294901760.0)) return std::nullopt;
    const auto sum = operand(masked, 0);
    if (!is(sum, op::add, dtype::u32)) return std::nullopt;
    const auto bits = operand(sum, 0), low = operand(sum, 1);
    if (!is(bits, op::bitcast_convert, dtype::u32) || operand(bits, 0) != x) return std::nullopt;
    if (!is(low, op::bitwise_and, dtype::u32) || !constant(operand(low, 1), 65535.0)) return std::nullopt;
    const auto noise = operand(low, 0);
    if (g[noise].dims != g[id].dims) return std::nullopt;
    return stochastic_round_operands{x, noise};
}

template <class... S>
auto stochastic_round_bf16(const random_key& key, const tensor<dtype_of<f32>, S...>& x, random_offset offset = {}) {
    detail::same_graph(key.k0.owner(), x.owner(), "stochastic_round_bf16");
    return stochastic_round_bf16(x, random_bits(key, x, offset));
}

}  // namespace scribe
