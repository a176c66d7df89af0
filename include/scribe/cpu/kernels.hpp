// scribe/cpu/kernels.hpp — one evaluation function per op of the graph IR, on
// cpu::array values. These are the portable reference kernels: every op, every
// dtype, exact XLA semantics (clamped indices, wrapping integers, division by
// zero). The executor calls them through one switch (cpu/executor.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "array.hpp"
#include "element.hpp"
#include "linalg.hpp"
#include "simd/elementwise.hpp"
#include "simd/gemv_batched.hpp"

namespace scribe::cpu::kernels {

using index = std::vector<std::int64_t>;

inline index strides_of(const shape& s) {
    index st(s.size());
    std::int64_t k = 1;
    for (std::size_t i = s.size(); i-- > 0;) {
        st[i] = k;
        k *= s[i].extent;
    }
    return st;
}

// Calls f(idx, flat) for every index of `s` in row-major order.
template <class F>
void for_each_index(const shape& s, F&& f) {
    const auto total = element_count(s);
    index idx(s.size(), 0);
    for (std::int64_t flat = 0; flat < total; ++flat) {
        f(idx, flat);
        for (std::size_t d = s.size(); d-- > 0;) {
            if (++idx[d] < s[d].extent) break;
            idx[d] = 0;
        }
    }
}

inline std::int64_t scalar_index(const array& a) {
    return visit(a.type(), [&](auto D) { return static_cast<std::int64_t>(element<decltype(D)::value>::load(a.data(), 0)); });
}

// --- element-wise ----------------------------------------------------------

template <class C>
C unary_value(op k, C x) {
    if constexpr (std::is_floating_point_v<C>) {
        switch (k) {
            case op::neg: return -x;
            case op::abs: return std::abs(x);
            case op::sign: return std::isnan(x) || x == C(0) ? x : std::copysign(C(1), x);  // keeps -0 and NaN, as XLA
            case op::exp: return std::exp(x);
            case op::expm1: return std::expm1(x);
            case op::log: return std::log(x);
            case op::log1p: return std::log1p(x);
            case op::sqrt: return std::sqrt(x);
            case op::rsqrt: return C(1) / std::sqrt(x);
            case op::tanh:  // f32: the fused kernel's (XLA's) rational form, so fused and unfused agree
                if constexpr (std::is_same_v<C, float>) return simd::tanh(x);
                return std::tanh(x);
            case op::logistic: return C(1) / (C(1) + std::exp(-x));
            case op::sin: return std::sin(x);
            case op::cos: return std::cos(x);
            case op::erf:
                if constexpr (std::is_same_v<C, float>) return simd::erf(x);
                return std::erf(x);
            case op::floor: return std::floor(x);
            default: break;
        }
    } else if constexpr (std::is_same_v<C, std::int64_t>) {
        if (k == op::neg) return static_cast<C>(0ull - static_cast<std::uint64_t>(x));
        if (k == op::abs) return x < 0 ? static_cast<C>(0ull - static_cast<std::uint64_t>(x)) : x;
        if (k == op::sign) return x > 0 ? 1 : x < 0 ? -1 : 0;
    }
    throw error("cpu: " + std::string(info(k).name) + " is not defined for this dtype");
}

inline std::int64_t int_pow(std::int64_t a, std::int64_t b) {
    if (b < 0) return a == 1 ? 1 : a == -1 ? (b % 2 ? -1 : 1) : 0;
    std::uint64_t r = 1, base = static_cast<std::uint64_t>(a);
    for (auto e = static_cast<std::uint64_t>(b); e; e >>= 1, base *= base)
        if (e & 1) r *= base;
    return static_cast<std::int64_t>(r);
}

template <class C>
C binary_value(op k, C a, C b) {
    if constexpr (std::is_floating_point_v<C>) {
        switch (k) {
            case op::add: return a + b;
            case op::sub: return a - b;
            case op::mul: return a * b;
            case op::div: return a / b;
            case op::max: return std::isnan(a) || std::isnan(b) ? std::numeric_limits<C>::quiet_NaN() : std::max(a, b);
            case op::min: return std::isnan(a) || std::isnan(b) ? std::numeric_limits<C>::quiet_NaN() : std::min(a, b);
            case op::pow: return std::pow(a, b);
            default: break;
        }
    } else if constexpr (std::is_same_v<C, std::int64_t>) {
        // Wrapping arithmetic, as XLA's integers wrap.
        const auto ua = static_cast<std::uint64_t>(a), ub = static_cast<std::uint64_t>(b);
        switch (k) {
            case op::add: return static_cast<C>(ua + ub);
            case op::sub: return static_cast<C>(ua - ub);
            case op::mul: return static_cast<C>(ua * ub);
            case op::div:  // XLA: x / 0 is -1 (all bits set); INT_MIN / -1 is INT_MIN
                if (b == 0) return -1;
                if (a == std::numeric_limits<C>::min() && b == -1) return a;
                return a / b;
            case op::max: return std::max(a, b);
            case op::min: return std::min(a, b);
            case op::pow: return int_pow(a, b);
            default: break;
        }
    }
    throw error("cpu: " + std::string(info(k).name) + " is not defined for this dtype");
}

inline array unary(const node& n, const array& x) {
    array out(n.type, n.dims);
    visit(n.type, [&](auto D) {
        using E = element<decltype(D)::value>;
        for (std::int64_t i = 0; i < x.size(); ++i)
            E::store(out.mutable_data(), i, unary_value<typename E::compute>(n.kind, E::load(x.data(), i)));
    });
    return out;
}

// f(i0, i1) over [0, count), in one piece per thread of the pool where count is
// large (each element by one thread, so results do not depend on the threads).
template <class F>
void over_elements(thread_pool* pool, std::int64_t count, F&& f) {
    constexpr std::int64_t least = std::int64_t{1} << 16;  // elements a thread is worth waking for
    if (!pool || pool->size() == 1 || count < 2 * least) return f(std::int64_t{0}, count);
    pool->run([&](unsigned t) {
        const auto [i0, i1] = pool->part(count, t, 64);
        if (i1 > i0) f(i0, i1);
    });
}

// pool: where not null, integer add, subtract and multiply are split over its threads.
inline array binary(const node& n, const array& a, const array& b, thread_pool* pool = nullptr) {
    auto out = array::uninitialized(n.type, n.dims);
    visit(a.type(), [&](auto D) {
        using E = element<decltype(D)::value>;
        using S = typename E::storage;
        if constexpr (std::is_same_v<typename E::compute, std::int64_t>) {  // the integer dtypes
            // Integer add, subtract and multiply wrap at the element's width: on its
            // unsigned bits they are one loop the compiler vectorizes (the values
            // binary_value's int64 gives once stored).
            using U = std::make_unsigned_t<S>;
            const auto* x = reinterpret_cast<const S*>(a.data());
            const auto* y = reinterpret_cast<const S*>(b.data());
            auto* r = reinterpret_cast<S*>(out.mutable_data());
            auto wrap = [&](auto f) {
                over_elements(pool, a.size(), [&](std::int64_t i0, std::int64_t i1) {
                    for (auto i = i0; i < i1; ++i) r[i] = static_cast<S>(static_cast<U>(f(static_cast<U>(x[i]), static_cast<U>(y[i]))));
                });
            };
            if (n.kind == op::add) return wrap([](U u, U v) { return u + v; });
            if (n.kind == op::sub) return wrap([](U u, U v) { return u - v; });
            if (n.kind == op::mul) return wrap([](U u, U v) { return u * v; });
        }
        if (n.kind == op::compare) {  // one loop per direction, the choice made once
            auto* r = out.mutable_data();
            auto each = [&](auto holds) {
                for (std::int64_t i = 0; i < a.size(); ++i) r[i] = holds(E::load(a.data(), i), E::load(b.data(), i)) ? 1 : 0;
            };
            switch (n.direction) {
                case comparison::eq: return each([](auto x, auto y) { return x == y; });
                case comparison::ne: return each([](auto x, auto y) { return x != y; });
                case comparison::lt: return each([](auto x, auto y) { return x < y; });
                case comparison::le: return each([](auto x, auto y) { return x <= y; });
                case comparison::gt: return each([](auto x, auto y) { return x > y; });
                case comparison::ge: return each([](auto x, auto y) { return x >= y; });
            }
            return;
        }
        for (std::int64_t i = 0; i < a.size(); ++i)
            E::store(out.mutable_data(), i, binary_value<typename E::compute>(n.kind, E::load(a.data(), i), E::load(b.data(), i)));
    });
    return out;
}

// --- bitwise ops and shifts, on each dtype's own bits -------------------------

// Calls f(std::integral_constant<op, K>{}) for the bitwise op k, so the loop
// over the elements is made once per op.
template <class F>
decltype(auto) visit_bitwise(op k, F&& f) {
    switch (k) {
        case op::bitwise_not: return f(std::integral_constant<op, op::bitwise_not>{});
        case op::bitwise_and: return f(std::integral_constant<op, op::bitwise_and>{});
        case op::bitwise_or: return f(std::integral_constant<op, op::bitwise_or>{});
        case op::bitwise_xor: return f(std::integral_constant<op, op::bitwise_xor>{});
        case op::shift_left: return f(std::integral_constant<op, op::shift_left>{});
        case op::shift_right_logical: return f(std::integral_constant<op, op::shift_right_logical>{});
        case op::shift_right_arithmetic: return f(std::integral_constant<op, op::shift_right_arithmetic>{});
        default: break;
    }
    throw error("cpu: " + std::string(info(k).name) + " is not a bitwise op");
}

// One element of op K on the storage type S (bool for pred). The width matters,
// so this is not binary_value's int64: shift amounts are read as unsigned S, an
// amount of S's width or more shifts every bit out (0, or the sign for an
// arithmetic shift), a logical shift works on S's own bits (s8 -1 >> 1 = 127) and
// an arithmetic one copies S's top bit, also for unsigned S (XLA's semantics).
template <op K, class S>
S bitwise_value(S a, S b) {
    if constexpr (std::is_same_v<S, bool>) {
        if constexpr (K == op::bitwise_not) return !a;
        else if constexpr (K == op::bitwise_and) return a && b;
        else if constexpr (K == op::bitwise_or) return a || b;
        else if constexpr (K == op::bitwise_xor) return a != b;
        else throw error("cpu: " + std::string(info(K).name) + " is not defined for pred");
    } else {
        using U = std::make_unsigned_t<S>;
        using I = std::make_signed_t<S>;
        constexpr U width = sizeof(S) * 8;
        const U x = static_cast<U>(a), y = static_cast<U>(b);
        if constexpr (K == op::bitwise_not) return static_cast<S>(static_cast<U>(~x));
        else if constexpr (K == op::bitwise_and) return static_cast<S>(static_cast<U>(x & y));
        else if constexpr (K == op::bitwise_or) return static_cast<S>(static_cast<U>(x | y));
        else if constexpr (K == op::bitwise_xor) return static_cast<S>(static_cast<U>(x ^ y));
        else if constexpr (K == op::shift_left) return y >= width ? S(0) : static_cast<S>(static_cast<U>(x << y));
        else if constexpr (K == op::shift_right_logical) return y >= width ? S(0) : static_cast<S>(static_cast<U>(x >> y));
        else {
            const I v = static_cast<I>(x);  // C++20: >> of a negative value copies the sign bit
            return static_cast<S>(y >= width ? static_cast<I>(v < 0 ? -1 : 0) : static_cast<I>(v >> y));
        }
    }
}

// bitwise_not (b null) and the binary bitwise ops and shifts.
// pool: where not null, the integer dtypes' passes are split over its threads.
inline array bitwise(const node& n, const array& a, const array* b, thread_pool* pool = nullptr) {
    auto out = array::uninitialized(n.type, n.dims);
    visit(n.type, [&](auto D) {
        using E = element<decltype(D)::value>;
        using C = typename E::compute;
        if constexpr (std::is_floating_point_v<C>) {
            throw error("cpu: " + std::string(info(n.kind).name) + " is not defined for " + std::string(name(n.type)));
        } else {
            visit_bitwise(n.kind, [&](auto K) {
                constexpr op k = decltype(K)::value;
                if constexpr (std::is_same_v<C, bool>) {
                    for (std::int64_t i = 0; i < out.size(); ++i)
                        E::store(out.mutable_data(), i, bitwise_value<k, bool>(E::load(a.data(), i), b && E::load(b->data(), i)));
                } else {  // on the stored elements: a loop the compiler vectorizes
                    using S = typename E::storage;
                    const auto* x = reinterpret_cast<const S*>(a.data());
                    const auto* y = b ? reinterpret_cast<const S*>(b->data()) : x;  // bitwise_not reads x only
                    auto* r = reinterpret_cast<S*>(out.mutable_data());
                    over_elements(pool, out.size(), [&](std::int64_t i0, std::int64_t i1) {
                        for (auto i = i0; i < i1; ++i) r[i] = bitwise_value<k, S>(x[i], y[i]);
                    });
                }
            });
        }
    });
    return out;
}

inline array select(const node& n, const array& p, const array& a, const array& b) {
    array out(n.type, n.dims);
    const auto es = static_cast<std::size_t>(info(n.type).bytes);
    for (std::int64_t i = 0; i < out.size(); ++i)
        std::memcpy(out.mutable_data() + i * es, (p.data()[i] ? a : b).data() + i * es, es);
    return out;
}

// XLA's convert: floats to integers truncate and saturate (NaN to 0), integers to
// narrower integers wrap, anything to pred is `!= 0`.
inline array convert(const node& n, const array& x) {
    array out(n.type, n.dims);
    visit(x.type(), [&](auto S) {
        visit(n.type, [&](auto D) {
            using ES = element<decltype(S)::value>;
            using ED = element<decltype(D)::value>;
            using CS = typename ES::compute;
            using CD = typename ED::compute;
            for (std::int64_t i = 0; i < x.size(); ++i) {
                const CS v = ES::load(x.data(), i);
                CD r;
                if constexpr (std::is_same_v<CD, bool>)
                    r = v != CS(0);
                else if constexpr (std::is_integral_v<CD> && std::is_floating_point_v<CS>)
                    r = static_cast<CD>(scribe::detail::saturate<typename ED::storage>(static_cast<double>(v)));
                else if constexpr (std::is_integral_v<CD>)
                    r = static_cast<CD>(static_cast<typename ED::storage>(v));
                else
                    r = static_cast<CD>(v);
                ED::store(out.mutable_data(), i, r);
            }
        });
    });
    return out;
}

// The elements' bytes read as another dtype of the same width.
inline array bitcast_convert(const node& n, const array& x) {
    auto out = array::uninitialized(n.type, n.dims);
    std::memcpy(out.mutable_data(), x.data(), x.bytes());
    return out;
}

inline array iota(const node& n) {
    array out(n.type, n.dims);
    const auto axis = static_cast<std::size_t>(n.axes.at(0));
    visit(n.type, [&](auto D) {
        using E = element<decltype(D)::value>;
        for_each_index(n.dims, [&](const index& idx, std::int64_t flat) {
            E::store(out.mutable_data(), flat, static_cast<typename E::compute>(idx[axis]));
        });
    });
    return out;
}

inline array constant(const node& n) {
    array out(n.type, n.dims);
    std::memcpy(out.mutable_data(), n.literal.data(), n.literal.size());
    return out;
}

// --- data movement (dtype-agnostic: whole elements are copied) ---------------

// out[idx] = x[sum_j idx[j] * source_strides[j]]: every element of the output read
// from the source by one stride per output dimension.
inline array gather_strided(const node& n, const array& x, const index& source_strides) {
    array out(n.type, n.dims);
    const auto es = static_cast<std::int64_t>(info(n.type).bytes);
    for_each_index(n.dims, [&](const index& idx, std::int64_t flat) {
        std::int64_t src = 0;
        for (std::size_t k = 0; k < idx.size(); ++k) src += idx[k] * source_strides[k];
        std::memcpy(out.mutable_data() + flat * es, x.data() + src * es, static_cast<std::size_t>(es));
    });
    return out;
}

inline void copy_rows(const unsigned char* src, const index& ss, std::int64_t src0, unsigned char* dst,
                      const index& ds, std::int64_t dst0, const shape& extents, std::int64_t es);

// New dimensions have stride 0: their elements repeat the source's.
inline array broadcast(const node& n, const array& x) {
    if (x.dims().empty()) {  // a scalar: a fill
        auto out = array::uninitialized(n.type, n.dims);
        visit(n.type, [&](auto D) {
            using S = typename element<decltype(D)::value>::storage;
            S v;
            std::memcpy(&v, x.data(), sizeof v);
            std::fill_n(reinterpret_cast<S*>(out.mutable_data()), out.size(), v);
        });
        return out;
    }
    const auto xs = strides_of(x.dims());
    index strides(n.dims.size(), 0);
    for (std::size_t k = 0; k < n.axes.size(); ++k) strides[static_cast<std::size_t>(n.axes[k])] = xs[k];
    if (strides.empty() || strides.back() != 1) return gather_strided(n, x, strides);
    // x's innermost dimension stays innermost (a table repeated along new leading
    // dimensions, say): whole rows of x are copied.
    auto out = array::uninitialized(n.type, n.dims);
    copy_rows(x.data(), strides, 0, out.mutable_data(), strides_of(n.dims), 0, n.dims,
              static_cast<std::int64_t>(info(n.type).bytes));
    return out;
}

inline array transpose(const node& n, const array& x) {
    const auto xs = strides_of(x.dims());
    index strides(n.dims.size());
    for (std::size_t k = 0; k < strides.size(); ++k) strides[k] = xs[static_cast<std::size_t>(n.axes[k])];
    if (strides.empty() || strides.back() != 1) return gather_strided(n, x, strides);
    // The innermost dimension stays innermost (heads and seq swapped around
    // head_dim, say): whole rows move with one memcpy each.
    auto out = array::uninitialized(n.type, n.dims);
    copy_rows(x.data(), strides, 0, out.mutable_data(), strides_of(n.dims), 0, n.dims,
              static_cast<std::int64_t>(info(n.type).bytes));
    return out;
}

inline array reshape(const node& n, const array& x) {
    array out(n.type, n.dims);
    std::memcpy(out.mutable_data(), x.data(), x.bytes());
    return out;
}

// Copies a block of `extents` elements between row-major arrays: element idx
// moves from src[src0 + idx . ss] to dst[dst0 + idx . ds]. The innermost
// dimension is contiguous in both, so each row moves with one memcpy; trailing
// dimensions that also lie contiguously in both join the row (a slice of q, k or
// v out of [seq, qkv, heads, head_dim] moves heads x head_dim at a time, a prompt's
// keys go into the cache in one copy).
inline void copy_rows(const unsigned char* src, const index& ss, std::int64_t src0, unsigned char* dst,
                      const index& ds, std::int64_t dst0, const shape& extents, std::int64_t es) {
    const auto rank = extents.size();
    if (element_count(extents) == 0) return;
    if (rank == 0) return (void)std::memcpy(dst + dst0 * es, src + src0 * es, static_cast<std::size_t>(es));
    std::size_t lead = rank - 1;  // dimensions [0, lead) are walked, [lead, rank) make a row
    std::int64_t row_elements = extents[rank - 1].extent;
    while (lead > 0 && ss[lead - 1] == row_elements && ds[lead - 1] == row_elements) row_elements *= extents[--lead].extent;
    const auto row = static_cast<std::size_t>(row_elements * es);
    index idx(lead, 0);
    for (;;) {
        std::int64_t s = src0, d = dst0;
        for (std::size_t k = 0; k < lead; ++k) {
            s += idx[k] * ss[k];
            d += idx[k] * ds[k];
        }
        std::memcpy(dst + d * es, src + s * es, row);
        std::size_t k = lead;
        while (k-- > 0) {
            if (++idx[k] < extents[k].extent) break;
            idx[k] = 0;
        }
        if (k == static_cast<std::size_t>(-1)) return;
    }
}

inline std::int64_t offset_of(const index& at, const index& strides) {
    std::int64_t o = 0;
    for (std::size_t k = 0; k < at.size(); ++k) o += at[k] * strides[k];
    return o;
}

// Copies the window of x starting at `start` with out's extents into out.
inline void copy_window(const array& x, const index& start, array& out) {
    const auto xs = strides_of(x.dims());
    copy_rows(x.data(), xs, offset_of(start, xs), out.mutable_data(), strides_of(out.dims()), 0, out.dims(),
              static_cast<std::int64_t>(info(x.type()).bytes));
}

inline array slice(const node& n, const array& x) {
    auto out = array::uninitialized(n.type, n.dims);  // every element is copied
    copy_window(x, n.starts, out);
    return out;
}

// Start indices are clamped so the window fits, as XLA does.
inline index clamped_starts(const std::vector<const array*>& starts, const shape& operand, const shape& window) {
    index s(operand.size());
    for (std::size_t k = 0; k < s.size(); ++k)
        s[k] = std::clamp<std::int64_t>(scalar_index(*starts[k]), 0, operand[k].extent - window[k].extent);
    return s;
}

inline array dynamic_slice(const node& n, const array& x, const std::vector<const array*>& starts) {
    auto out = array::uninitialized(n.type, n.dims);  // every element is copied
    copy_window(x, clamped_starts(starts, x.dims(), n.dims), out);
    return out;
}

// x with u written at the (clamped) starts. `x_dying`: x's own buffer, when x is
// not read after this op (a KV cache passed in for an update in place): the update
// is written there and only u's bytes move.
inline array dynamic_update_slice(const node& n, const array& x, const array& u,
                                  const std::vector<const array*>& starts, array* x_dying = nullptr) {
    array out;
    if (x_dying && x_dying->owns()) {
        out = std::move(*x_dying).relabel(n.dims);
    } else {
        out = array::uninitialized(n.type, n.dims);
        std::memcpy(out.mutable_data(), x.data(), x.bytes());
    }
    const auto s = clamped_starts(starts, out.dims(), u.dims());
    const auto os = strides_of(n.dims);
    copy_rows(u.data(), strides_of(u.dims()), 0, out.mutable_data(), os, offset_of(s, os), u.dims(),
              static_cast<std::int64_t>(info(n.type).bytes));
    return out;
}

inline array concatenate(const node& n, const std::vector<const array*>& xs) {
    array out(n.type, n.dims);
    const auto axis = static_cast<std::size_t>(n.axes.at(0));
    const auto es = static_cast<std::int64_t>(info(n.type).bytes);
    const auto os = strides_of(n.dims);
    std::int64_t offset = 0;
    for (const auto* x : xs) {
        index at(n.dims.size(), 0);
        at[axis] = offset;
        copy_rows(x->data(), strides_of(x->dims()), 0, out.mutable_data(), os, offset_of(at, os), x->dims(), es);
        offset += x->dims()[axis].extent;
    }
    return out;
}

// The output is made a row at a time: a row is the output's innermost dims that
// the pad leaves alone (x's extent, start 0), copied whole from x or filled with
// the value; the rest of the index picks the row (the backward of a slice pads
// a part of a tensor to its whole shape, so rows are long).
inline array pad(const node& n, const array& x, const array& value) {
    auto out = array::uninitialized(n.type, n.dims);
    const auto es = static_cast<std::size_t>(info(n.type).bytes);
    const auto rank = n.dims.size();
    std::size_t inner = rank;  // dims [inner, rank) are the row
    while (inner > 0 && n.starts[inner - 1] == 0 && x.dims()[inner - 1].extent == n.dims[inner - 1].extent) --inner;
    std::int64_t row = 1;
    for (std::size_t k = inner; k < rank; ++k) row *= n.dims[k].extent;
    const auto row_bytes = static_cast<std::size_t>(row) * es;
    const bool zero = std::all_of(value.data(), value.data() + es, [](unsigned char b) { return b == 0; });
    auto fill = [&](unsigned char* dst) {
        if (zero) {
            std::memset(dst, 0, row_bytes);
            return;
        }
        for (std::int64_t e = 0; e < row; ++e) std::memcpy(dst + static_cast<std::size_t>(e) * es, value.data(), es);
    };
    const auto xs = strides_of(x.dims());
    const shape rows(n.dims.begin(), n.dims.begin() + static_cast<std::ptrdiff_t>(inner));
    for_each_index(rows, [&](const index& idx, std::int64_t r) {
        std::int64_t src = 0;
        bool inside = true;
        for (std::size_t k = 0; k < inner && inside; ++k) {
            const auto i = idx[k] - n.starts[k];
            inside = i >= 0 && i < x.dims()[k].extent;
            src += i * xs[k];
        }
        auto* dst = out.mutable_data() + static_cast<std::size_t>(r) * row_bytes;
        if (inside) std::memcpy(dst, x.data() + static_cast<std::size_t>(src) * es, row_bytes);
        else fill(dst);
    });
    return out;
}

// Rows of the table along `axis`, picked by clamped indices: [table's other dims..., ids' dims...].
inline array gather(const node& n, const array& table, const array& ids) {
    auto out = array::uninitialized(n.type, n.dims);  // every element is written
    const auto axis = static_cast<std::size_t>(n.axes.at(0));
    const auto es = static_cast<std::int64_t>(info(n.type).bytes);
    const auto ts = strides_of(table.dims());
    const auto rows = table.dims().size() - 1;
    const auto extent = table.dims()[axis].extent;
    std::vector<std::int64_t> picked(static_cast<std::size_t>(ids.size()));
    visit(ids.type(), [&](auto D) {
        for (std::int64_t i = 0; i < ids.size(); ++i)
            picked[static_cast<std::size_t>(i)] =
                std::clamp<std::int64_t>(static_cast<std::int64_t>(element<decltype(D)::value>::load(ids.data(), i)), 0, extent - 1);
    });
    // The table as [before, extent, after] (the dims before and after the axis, each
    // group flattened) and the output as [before, after, ids]: out[p, q, i] =
    // table[p, picked[i], q]. Ids are taken 64 at a time, so each table line read
    // (64 rows, one line each) serves the next elements of q, and the output is
    // written in runs of 64.
    std::int64_t before = 1, after = 1;
    for (std::size_t k = 0; k < table.dims().size(); ++k)
        if (k < axis) before *= table.dims()[k].extent;
        else if (k > axis) after *= table.dims()[k].extent;
    const auto count = ids.size();
    auto copy = [&](auto element) {
        using E = decltype(element);
        const auto* src = reinterpret_cast<const E*>(table.data());
        auto* dst = reinterpret_cast<E*>(out.mutable_data());
        constexpr std::int64_t block = 64;
        const std::int64_t* pick = picked.data();
        for (std::int64_t p = 0; p < before; ++p)
            for (std::int64_t i0 = 0; i0 < count; i0 += block) {
                const auto i1 = std::min(count, i0 + block);
                for (std::int64_t q = 0; q < after; ++q) {
                    const E* from = src + p * extent * after + q;
                    E* to = dst + (p * after + q) * count;
                    for (auto i = i0; i < i1; ++i) to[i] = from[pick[i] * after];
                }
            }
    };
    // (Each case returns `out` by name: `return copy(...), out;` would copy it, the
    // comma's result being no name that a return moves from.)
    switch (es) {
        case 1: copy(std::uint8_t{}); return out;
        case 2: copy(std::uint16_t{}); return out;
        case 4: copy(std::uint32_t{}); return out;
        case 8: copy(std::uint64_t{}); return out;
        default: break;
    }
    const auto id_strides = strides_of(ids.dims());
    for_each_index(n.dims, [&](const index& idx, std::int64_t flat) {
        std::int64_t id_flat = 0;
        for (std::size_t k = rows; k < idx.size(); ++k) id_flat += idx[k] * id_strides[k - rows];
        std::int64_t src = picked[static_cast<std::size_t>(id_flat)] * ts[axis];
        for (std::size_t k = 0, t = 0; k < rows; ++k, ++t) {
            if (t == axis) ++t;
            src += idx[k] * ts[t];
        }
        std::memcpy(out.mutable_data() + flat * es, table.data() + src * es, static_cast<std::size_t>(es));
    });
    return out;
}

// table with each update added to the row its index picks along `axis`: the
// transpose of gather. updates is [table's other dims..., ids' dims...]. An index
// outside [0, extent) is skipped, as XLA's scatter does. The adds into one element
// follow the indices' order, each in the compute type and stored at once: integers
// wrap at their width, 16-bit floats round to their type after every add (XLA's
// add reducer computes in the element type).
// With table_dying (the table, read for the last time and owned): the updates
// are added into its buffer, not into a copy.
inline array scatter(const node& n, const array& table, const array& ids, const array& updates, array* table_dying = nullptr) {
    array out;
    if (table_dying && table_dying->owns()) {
        out = std::move(*table_dying).relabel(n.dims);
    } else {
        out = array::uninitialized(n.type, n.dims);
        std::memcpy(out.mutable_data(), table.data(), table.bytes());
    }
    const auto axis = static_cast<std::size_t>(n.axes.at(0));
    const auto extent = n.dims[axis].extent;
    const auto ts = strides_of(n.dims);
    const auto count = ids.size();
    std::vector<std::int64_t> row(static_cast<std::size_t>(count));  // each index's row, or -1: skipped
    const auto id_bytes = static_cast<std::size_t>(info(ids.type()).bytes);
    for (std::int64_t p = 0; p < count; ++p) {
        const auto r = load_as_int(ids.type(), ids.data() + static_cast<std::size_t>(p) * id_bytes);
        row[static_cast<std::size_t>(p)] = r >= 0 && r < extent ? r : -1;
    }
    shape window;  // the table's other dimensions, and their strides in it
    index window_strides;
    for (std::size_t k = 0; k < n.dims.size(); ++k)
        if (k != axis) {
            window.push_back(n.dims[k]);
            window_strides.push_back(ts[k]);
        }
    visit(n.type, [&](auto D) {
        using E = element<decltype(D)::value>;
        using C = typename E::compute;
        for_each_index(window, [&](const index& w, std::int64_t flat) {
            const auto base = offset_of(w, window_strides);
            for (std::int64_t p = 0; p < count; ++p) {
                const auto r = row[static_cast<std::size_t>(p)];
                if (r < 0) continue;
                const auto t = base + r * ts[axis];
                E::store(out.mutable_data(), t,
                         binary_value<C>(op::add, E::load(out.data(), t), E::load(updates.data(), flat * count + p)));
            }
        });
    });
    return out;
}

// --- contractions and reductions ------------------------------------------

// The stride of a group of dimensions whose offsets are i * stride (one dimension,
// or several that are adjacent in memory order); -1 if they are not.
inline std::int64_t affine_stride(const std::vector<std::int64_t>& offsets) {
    if (offsets.size() < 2) return 0;
    const auto s = offsets[1];
    for (std::size_t i = 0; i < offsets.size(); ++i)
        if (offsets[i] != static_cast<std::int64_t>(i) * s) return -1;
    return s;
}

// A weight packed for the GEMM once, when it was bound: f32 panels, or bf16 pair
// panels where both operands are bf16 and the CPU has AVX512_BF16.
// Or, for a weight that one-row products (decode) read, a copy laid out [n, k]
// with rows contiguous, in memory from cpu::array's allocator (2 MiB pages): the
// GEMV then streams W once in memory order, one dot per row, which is how it
// reaches the read bandwidth (see simd/gemv.hpp); neither a weight read along
// its rows of n nor one in a file's 4 KiB pages does.
// An f16 weight that f16 activations multiply is split into bf16 hi and lo pair
// panels where the CPU has AMX (simd/gemm_f16.hpp).
struct packed_weight {
    simd::packed_matrix f32;
    simd::packed_pairs pairs;
    simd::split_pairs f16;
    std::optional<array> transposed;
    bool empty() const { return f32.rows() == 0 && pairs.rows() == 0 && f16.rows() == 0 && !transposed; }
    std::size_t bytes() const { return f32.bytes() + pairs.bytes() + f16.bytes() + (transposed ? transposed->bytes() : 0); }
};

// dst[j * k + i] = src[i * sk + j * sn] for i < k, j < n, in tiles (rows of the
// destination are contiguous).
template <class E>
void gather_rows(const E* src, std::int64_t sk, std::int64_t sn, std::int64_t k, std::int64_t n, E* dst) {
    if (sk == 1) {
        for (std::int64_t j = 0; j < n; ++j) std::memcpy(dst + j * k, src + j * sn, static_cast<std::size_t>(k) * sizeof(E));
        return;
    }
    constexpr std::int64_t t = 32;
    for (std::int64_t k0 = 0; k0 < k; k0 += t)
        for (std::int64_t n0 = 0; n0 < n; n0 += t)
            for (std::int64_t j = n0; j < std::min(n, n0 + t); ++j)
                for (std::int64_t i = k0; i < std::min(k, k0 + t); ++i) dst[j * k + i] = src[i * sk + j * sn];
}

// Where a dot's operands keep their elements: for each group of dimensions
// (batch, free, contracting), the offset of every element of the group.
struct dot_offsets {
    std::vector<std::int64_t> ab, am, ak, bb, bn, bk;
};
namespace detail {
// The flat offsets of the elements of x along `axes` (the first axis slowest).
inline std::vector<std::int64_t> axis_offsets(const shape& x, const index& axes) {
    const auto st = strides_of(x);
    shape sub;
    for (auto ax : axes) sub.push_back(x[static_cast<std::size_t>(ax)]);
    std::vector<std::int64_t> out(static_cast<std::size_t>(element_count(sub)));
    for_each_index(sub, [&](const index& idx, std::int64_t flat) {
        std::int64_t o = 0;
        for (std::size_t k = 0; k < idx.size(); ++k) o += idx[k] * st[static_cast<std::size_t>(axes[k])];
        out[static_cast<std::size_t>(flat)] = o;
    });
    return out;
}
// The axes of a rank-`rank` operand that are neither contracted nor batch.
inline index free_axes(std::size_t rank, const index& contracting, const index& batch) {
    index out;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(rank); ++i)
        if (std::find(contracting.begin(), contracting.end(), i) == contracting.end() &&
            std::find(batch.begin(), batch.end(), i) == batch.end())
            out.push_back(i);
    return out;
}
}  // namespace detail

// The left operand's part of dot_layout (ab, am, ak), for products whose right
// operand is laid out by other means (a q8 weight's rows).
inline dot_offsets dot_lhs_layout(const node& n, const shape& a) {
    const auto& d = n.dot;
    using detail::axis_offsets, detail::free_axes;
    return {axis_offsets(a, d.lhs_batch), axis_offsets(a, free_axes(a.size(), d.lhs_contracting, d.lhs_batch)),
            axis_offsets(a, d.lhs_contracting), {}, {}, {}};
}

inline dot_offsets dot_layout(const node& n, const shape& a, const shape& b) {
    const auto& d = n.dot;
    using detail::axis_offsets, detail::free_axes;
    auto l = dot_lhs_layout(n, a);
    l.bb = axis_offsets(b, d.rhs_batch);
    l.bn = axis_offsets(b, free_axes(b.size(), d.rhs_contracting, d.rhs_batch));
    l.bk = axis_offsets(b, d.rhs_contracting);
    return l;
}

// A dot's offsets and each group's one stride (affine_stride: -1 where it has
// none): what the float products read. The executor finds it once per node (a
// graph's shapes are fixed); a decode step would otherwise spend more time
// listing the LM head's 50257 row offsets than many of its products take.
struct dot_plan {
    dot_offsets at;
    std::int64_t sam = -1, sak = -1, sbk = -1, sbn = -1, sbb = -1;
    dot_plan() = default;
    explicit dot_plan(dot_offsets o)
        : at(std::move(o)), sam(affine_stride(at.am)), sak(affine_stride(at.ak)), sbk(affine_stride(at.bk)),
          sbn(affine_stride(at.bn)), sbb(affine_stride(at.bb)) {}
    dot_plan(const node& n, const shape& a, const shape& b) : dot_plan(dot_layout(n, a, b)) {}
};

namespace detail {
// dst = src rounded to T, split over the pool when it is large.
template <class T>
void narrow_block(const float* src, T* dst, std::int64_t total, thread_pool* pool) {
    if (pool && pool->size() > 1 && total >= 65536)
        pool->run([&](unsigned t) {
            const auto [i0, i1] = pool->part(total, t, 64);
            simd::narrow(src + i0, dst + i0, i1 - i0);
        });
    else
        simd::narrow(src, dst, total);
}

// Decode's attention products, a few rows per batch (a key/value head's group
// of queries) against a matrix whose batches interleave in its rows (the KV
// cache [keys, heads, head_dim]): read once in memory order by
// simd/gemv_batched.hpp's kernels, the left side first gathered into f32. False
// (nothing done) where the shapes or the CPU have no such kernel.
template <class T>
bool interleaved_dot(const array& a, const array& b, const dot_plan& plan, array& out, thread_pool* pool) {
    const auto B = static_cast<std::int64_t>(plan.at.ab.size()), M = static_cast<std::int64_t>(plan.at.am.size()),
               K = static_cast<std::int64_t>(plan.at.ak.size()), N = static_cast<std::int64_t>(plan.at.bn.size());
    const auto sbb = plan.sbb, sbk = plan.sbk, sbn = plan.sbn;
    if (B < 2 || sbb <= 0 || sbk < 0 || sbn < 0) return false;
    // q . K^T: each batch's row of W is K contiguous elements, the batches within W's rows.
    const bool dots = sbk == 1 && sbb < sbn && simd::batched_dots_available(M, K);
    // p . V: each batch's row is N contiguous elements.
    const bool rows = !dots && sbn == 1 && sbb < sbk && simd::batched_rows_available(M, N);
    if (!dots && !rows) return false;
    const auto* pa = reinterpret_cast<const T*>(a.data());
    const auto* pb = reinterpret_cast<const T*>(b.data());
    std::vector<float> x(static_cast<std::size_t>(B * M * K));
    std::size_t f = 0;
    for (auto ib : plan.at.ab)
        for (auto im : plan.at.am)
            for (auto ik : plan.at.ak) x[f++] = simd::to_f32(pa[ib + im + ik]);
    constexpr bool wide = std::is_same_v<T, float>;
    array block = wide ? array() : array::uninitialized(dtype::f32, shape{{"", B * M * N}});
    float* c = wide ? reinterpret_cast<float*>(out.mutable_data()) : reinterpret_cast<float*>(block.mutable_data());
    const int m = static_cast<int>(M);
    if (dots) {
        auto part = [&](std::int64_t n0, std::int64_t n1) { simd::batched_dots(m, B, n0, n1, K, x.data(), pb, sbb, sbn, c, N); };
        if (pool && pool->size() > 1 && N >= 32)
            pool->run([&](unsigned t) {
                const auto [n0, n1] = pool->part(N, t, 16);
                if (n1 > n0) part(n0, n1);
            });
        else
            part(0, N);
    } else {
        auto part = [&](std::int64_t b0, std::int64_t b1) { simd::batched_rows(m, b0, b1, K, N, x.data(), pb, sbb, sbk, c); };
        if (pool && pool->size() > 1)
            pool->run([&](unsigned t) {
                const auto [b0, b1] = pool->part(B, t);
                if (b1 > b0) part(b0, b1);
            });
        else
            part(0, B);
    }
    if constexpr (!wide) narrow_block(c, reinterpret_cast<T*>(out.mutable_data()), B * M * N, pool);
    return true;
}
}  // namespace detail

// A float dot (f32, f16 or bf16 operands, f32 accumulation) through the SIMD GEMM,
// or the GEMV when there is one column. Each group of dimensions (batch, free,
// contracting) must be one stride for the GEMM to read it; an operand whose
// groups are not (heads and head_dim contracted from [heads, seq, head_dim], say)
// is first copied into [batch, free, contracting] order, which costs far less
// than the product. Batched products with at least as many batches as threads
// are split over the batch, the others over the output's columns.
template <class T>
void float_dot(const array& a, const array& b, const dot_plan& plan, array& out, thread_pool* pool,
               const packed_weight* packed = nullptr) {
    const auto B = static_cast<std::int64_t>(plan.at.ab.size()), M = static_cast<std::int64_t>(plan.at.am.size()),
               K = static_cast<std::int64_t>(plan.at.ak.size()), N = static_cast<std::int64_t>(plan.at.bn.size());
    if (!packed && M <= simd::batched_gemv_max_rows && detail::interleaved_dot<T>(a, b, plan, out, pool)) return;
    const auto* pa = reinterpret_cast<const T*>(a.data());
    const auto* pb = reinterpret_cast<const T*>(b.data());
    // Gathers an operand as [batch][outer][inner] into `copy` (from the run's buffer
    // pool) and rewrites its offsets to match; its rows ([batch][outer]) split over
    // the pool's threads where there are enough (BERT's attention output at batch 8
    // is 3 MiB).
    auto canonical = [pool](const T* p, std::vector<std::int64_t>& batch, std::vector<std::int64_t>& outer,
                            std::vector<std::int64_t>& inner, array& copy) {
        const auto nb = batch.size(), no = outer.size(), ni = inner.size();
        copy = array::uninitialized(cpu::detail::dtype_of_value<T>(), shape{{"", static_cast<std::int64_t>(nb * no * ni)}});
        T* const out = reinterpret_cast<T*>(copy.mutable_data());
        // Inner offsets that lie in runs (heads x head_dim contracted from [heads, seq,
        // head_dim]: runs of head_dim) are copied run by run.
        std::size_t run = ni ? 1 : 0;
        while (run < ni && inner[run] == inner[0] + static_cast<std::int64_t>(run)) ++run;
        for (std::size_t i = 0; run > 1 && i < ni; ++i)
            if (i % run && inner[i] != inner[i - 1] + 1) run = 1;
        if (run > 1 && ni % run) run = 1;
        const auto rows = static_cast<std::int64_t>(nb * no);
        auto copy_rows = [&](std::int64_t r0, std::int64_t r1) {
            for (auto r = static_cast<std::size_t>(r0); r < static_cast<std::size_t>(r1); ++r) {
                const T* src = p + batch[r / no] + outer[r % no];
                T* dst = out + r * ni;
                if (run > 1)
                    for (std::size_t i = 0; i < ni; i += run) std::memcpy(dst + i, src + inner[i], run * sizeof(T));
                else
                    for (std::size_t i = 0; i < ni; ++i) dst[i] = src[inner[i]];
            }
        };
        if (pool && pool->size() > 1 && rows * static_cast<std::int64_t>(ni * sizeof(T)) >= (std::int64_t{1} << 18))
            pool->run([&](unsigned t) {
                const auto [r0, r1] = pool->part(rows, t);
                if (r1 > r0) copy_rows(r0, r1);
            });
        else
            copy_rows(0, rows);
        for (std::size_t i = 0; i < nb; ++i) batch[i] = static_cast<std::int64_t>(i * no * ni);
        for (std::size_t i = 0; i < no; ++i) outer[i] = static_cast<std::int64_t>(i * ni);
        for (std::size_t i = 0; i < ni; ++i) inner[i] = static_cast<std::int64_t>(i);
        return static_cast<const T*>(out);
    };
    array a_copy, b_copy;
    std::optional<dot_plan> gathered;  // the offsets of the copies, where an operand is copied
    if (plan.sam < 0 || plan.sak < 0 || plan.sbk < 0 || plan.sbn < 0) {
        auto l = plan.at;
        if (plan.sam < 0 || plan.sak < 0) pa = canonical(pa, l.ab, l.am, l.ak, a_copy);
        if (plan.sbk < 0 || plan.sbn < 0) pb = canonical(pb, l.bb, l.bk, l.bn, b_copy);
        gathered.emplace(std::move(l));
    }
    const auto& used = gathered ? *gathered : plan;
    const auto& ab = used.at.ab;
    const auto& bb = used.at.bb;
    const auto sam = used.sam, sak = used.sak, sbk = used.sbk, sbn = used.sbn;
    constexpr bool wide = std::is_same_v<T, float>;
    // Whether the product is the GEMM against the packed weight (the last branch of `one` below
    // that takes `packed`: decode's rows go to the GEMV).
    const bool packed_gemm = packed && B == 1 &&
                             !(M == 1 && (packed->transposed || (sbn == 1 && !(N == 1 && sam == 1)) || sbk == 1));
    // f32 results go straight to the output; 16-bit ones through an f32 block, rounded once,
    // except a bf16 GEMM against a weight packed in pairs, which rounds into the output as it
    // finishes each block (the block then only for partial sums, where its kernel needs them).
    // (The block comes from the run's buffer pool: recycled, not zeroed, 64-byte aligned.)
    bool rounded_by_gemm = false;
    if constexpr (std::is_same_v<T, bfloat16>) rounded_by_gemm = packed_gemm && packed->pairs.rows();
    // Batches run one to a thread (or all on one thread) are each computed into a block of
    // their thread and rounded from it while it is in cache, so the f32 results of all the
    // batches (6 MiB for BERT's attention scores at batch 8) are never written out and read
    // back; not batches of over 4 MiB of results, which would not stay in cache anyway.
    const bool by_batch = pool && pool->size() > 1 && B >= static_cast<std::int64_t>(pool->size());
    const bool round_each = !wide && !rounded_by_gemm && B > 1 && M * N <= (std::int64_t{1} << 20) &&
                            (by_batch || !pool || pool->size() == 1);
    const bool f32_block = !wide && !round_each && (!rounded_by_gemm || simd::bf16_gemm_needs_f32(packed->pairs));
    T* const out_data = reinterpret_cast<T*>(out.mutable_data());
    array block = f32_block ? array::uninitialized(dtype::f32, shape{{"", B * M * N}}) : array();
    float* c = wide ? reinterpret_cast<float*>(out.mutable_data()) : f32_block ? reinterpret_cast<float*>(block.mutable_data()) : nullptr;
    // The vector of a GEMV as K contiguous f32 values: in place when it is, else gathered into `x`.
    auto as_f32_vector = [K](const T* v, std::int64_t stride, std::vector<float>& x) -> const float* {
        if constexpr (wide)
            if (stride == 1) return v;
        x.resize(static_cast<std::size_t>(K));
        if constexpr (!wide)
            if (stride == 1) return simd::widen(v, x.data(), K), x.data();
        for (std::int64_t k = 0; k < K; ++k) x[static_cast<std::size_t>(k)] = simd::to_f32(v[k * stride]);
        return x.data();
    };
    // rows dots of W's rows (along k) with the vector v: a bf16 v stays bf16 where
    // the CPU multiplies bf16 pairs (the GEMV's fastest form), else it is widened.
    auto dots = [&](thread_pool* p, std::int64_t rows, const T* v, std::int64_t stride, const T* w, std::int64_t ldw, float* y) {
        if constexpr (std::is_same_v<T, bfloat16>)
            if (stride == 1 && simd::detail::has_avx512bf16()) return gemv_dots(p, rows, K, v, w, ldw, y);
        std::vector<float> x;
        gemv_dots(p, rows, K, as_f32_vector(v, stride, x), w, ldw, y);
    };
    auto product = [&](std::int64_t i, thread_pool* p, float* pc) {
        const T* ai = pa + ab[static_cast<std::size_t>(i)];
        const T* bi = pb + bb[static_cast<std::size_t>(i)];
        if (M == 1 && packed && packed->transposed) {  // decode against a bound weight: one dot per row
            dots(p, N, ai, sak, reinterpret_cast<const T*>(packed->transposed->data()), K, pc);
        } else if (M == 1 && sbn == 1 && !(N == 1 && sam == 1)) {  // decode, x . W: stream W's rows along n
            std::vector<float> x;
            gemv_rows(p, N, K, as_f32_vector(ai, sak, x), bi, sbk, pc);
        } else if (M == 1 && sbk == 1) {  // decode, x . W^T (W's rows along k): one dot per row of W
            dots(p, N, ai, sak, bi, sbn, pc);
        } else if (N == 1 && sak == 1 && !packed) {  // W . x with W's rows along k
            dots(p, M, bi, sbk, ai, sam, pc);
        } else if (M < 8 && !packed && (sbn == 1 || sbk == 1)) {
            // A few rows against a matrix: grouped-query attention's decode (the group's query heads
            // against one key/value head), batched decode's products (2-7 sequences against a
            // weight) and speculative decoding's verify step (2-7 tokens). Packing the matrix for the
            // GEMM cost several times the product at these sizes. Where the CPU has the several-row
            // kernels the matrix is read once per group of up to simd::gemv_multi_rows() rows (with
            // AVX-512's 4: two groups of 3 and 4 for 7); else once per row.
            const std::int64_t most = simd::gemv_multi_rows();
            const std::int64_t groups = most ? (M + most - 1) / most : M;
            for (std::int64_t g0 = 0, gi = 0; gi < groups; ++gi) {
                const std::int64_t g1 = g0 + (M - g0) / (groups - gi);  // the rows left, shared evenly
                const int rows = static_cast<int>(g1 - g0);
                float* ym[8];
                for (int m = 0; m < rows; ++m) ym[m] = pc + (g0 + m) * N;
                const T* ag = ai + g0 * sam;
                g0 = g1;
                if constexpr (std::is_same_v<T, bfloat16>)
                    if (rows >= 2 && sbn != 1 && sak == 1 && simd::gemv_multi_bf16_available()) {  // bf16 pairs, x kept in bf16
                        const T* xb[8];
                        for (int m = 0; m < rows; ++m) xb[m] = ag + m * sam;
                        gemv_dots_multi(p, rows, N, K, xb, bi, sbn, ym);
                        continue;
                    }
                std::vector<float> xs[8];
                const float* xm[8];
                for (int m = 0; m < rows; ++m) xm[m] = as_f32_vector(ag + m * sam, sak, xs[m]);
                if (rows >= 2) {
                    if (sbn == 1) gemv_rows_multi(p, rows, N, K, xm, bi, sbk, ym);
                    else gemv_dots_multi(p, rows, N, K, xm, bi, sbn, ym);
                } else if (sbn == 1) {
                    gemv_rows(p, N, K, xm[0], bi, sbk, ym[0]);
                } else {
                    gemv_dots(p, N, K, xm[0], bi, sbn, ym[0]);
                }
            }
        } else if (packed_gemm) {  // a weight packed when it was bound
            if constexpr (std::is_same_v<T, bfloat16>)
                if (rounded_by_gemm)
                    return gemm(p, M, simd::basic_matrix_view<T>{ai, sam, sak}, packed->pairs, out_data, N, c, N);
            if constexpr (std::is_same_v<T, half>)
                if (packed->f16.rows()) return gemm(p, M, simd::basic_matrix_view<T>{ai, sam, sak}, packed->f16, pc, N);
            gemm(p, M, simd::basic_matrix_view<T>{ai, sam, sak}, packed->f32, pc, N);
        } else if (N == 1 && (sam == 1 || M == 1)) {  // decode: stream A's rows along m
            std::vector<float> x;
            gemv_rows(p, M, K, as_f32_vector(bi, sbk, x), ai, sak, pc);
        } else {
            gemm(p, M, N, K, simd::basic_matrix_view<T>{ai, sam, sak}, simd::basic_matrix_view<T>{bi, sbk, sbn}, pc, N);
        }
    };
    // Decode's attention products that interleaved_dot above does not take (no
    // AVX-512, a head size not a multiple of 16, more than 8 query rows per head):
    // a few query rows per head against the KV cache, each head's rows 128-256
    // bytes out of every row of all heads. The weights' stream evicts the cache
    // between layers, and read one head at a time its lines came from memory one
    // short stride after another (4x a sequential read, the prefetchers not
    // following). So a small right operand is first prefetched whole, in address
    // order, by each thread that reads it: measured on Zen 5 with LLaMA's four
    // key/value heads and 192 keys evicted, the two products went from 26 + 31 to
    // 15 + 15 us per layer.
    const auto b_bytes = b.bytes();  // (counted once: bytes() multiplies the dims out)
    const bool prefetch_b = B > 1 && M <= 4 && !packed && !gathered && b_bytes <= (std::size_t{1} << 20);
    auto prefetch = [&] {
        if (!prefetch_b) return;
        const auto* bytes = reinterpret_cast<const char*>(b.data());
        for (std::size_t i = 0; i < b_bytes; i += 64) __builtin_prefetch(bytes + i, 0, 3);
    };
    auto one = [&](std::int64_t i, thread_pool* p) {
        if (!round_each) return product(i, p, c ? c + i * M * N : nullptr);  // (null: a bf16 GEMM that rounds into `out`)
        if constexpr (!wide) {
            thread_local simd::aligned_vector<float> block_of_thread;
            block_of_thread.resize(static_cast<std::size_t>(M * N));
            product(i, p, block_of_thread.data());
            simd::narrow(block_of_thread.data(), out_data + i * M * N, M * N);
        }
    };
    if (by_batch) {
        pool->run([&](unsigned t) {
            prefetch();
            const auto [b0, b1] = pool->part(B, t);
            for (auto i = b0; i < b1; ++i) one(i, nullptr);
        });
    } else {
        prefetch();
        for (std::int64_t i = 0; i < B; ++i) one(i, pool);
    }
    if constexpr (!wide)
        if (!rounded_by_gemm && !round_each) detail::narrow_block(c, out_data, B * M * N, pool);
}

// How pack_rhs lays out a dot's right operand (see packed_weight): the form, and
// the K x N matrix it reads through strides (sbk, sbn) of the operand's bytes.
struct pack_plan {
    enum class form : std::uint8_t { none, transposed, f32_panels, bf16_pairs, f16_split };
    form kind = form::none;
    dtype type = dtype::f32;  // the operand's elements
    std::int64_t k = 0, n = 0, sbk = 0, sbn = 0;

    // The packed form's name, the same wherever the same kernels pack the same
    // matrix (panels name their tile width and k blocks): packs made by one
    // process are found by another under it (a saved artifact).
    std::string key() const {
        std::string s;
        switch (kind) {
            case form::none: return "none";
            case form::transposed: s = "rows"; break;
            case form::f32_panels: {
                const auto c = simd::detail::choose_kernel(n);
                s = "panels" + std::to_string(c.nr) + "x" + std::to_string(c.kc);
                break;
            }
            case form::bf16_pairs:
            case form::f16_split: {
                const auto c = simd::detail::choose_pair_kernel(n);
                s = std::string(kind == form::bf16_pairs ? "pairs" : "split") + std::to_string(c.nr) + "x" + std::to_string(c.kc);
                break;
            }
        }
        return s + "." + std::string(name(type)) + ".k" + std::to_string(k) + "s" + std::to_string(sbk) + ".n" + std::to_string(n) + "s" +
               std::to_string(sbn);
    }
    // The bytes of the packed form on this CPU.
    std::size_t bytes() const {
        switch (kind) {
            case form::transposed: return static_cast<std::size_t>(k * n) * info(type).bytes;
            case form::f32_panels: return simd::packed_matrix::size_for(k, n) * sizeof(float);
            case form::bf16_pairs: return simd::packed_pairs::size_for(k, n) * sizeof(std::uint32_t);
            case form::f16_split: return simd::split_pairs::size_for(k, n) * sizeof(std::uint32_t);
            default: return 0;
        }
    }
};

// The form pack_rhs gives the right operand b (of type b_type, dims b_dims) of
// float dot n, when it is one matrix (no batch dimensions, each group one
// stride) and the left side, of type `a_type`, has at least `min_rows` rows; for
// one-row products, the [n, k] copy (see packed_weight); none otherwise.
// `in_file`: b's bytes are borrowed (an mmapped file), not owned by the caller's memory.
inline pack_plan plan_pack(const node& n, const shape& a, dtype a_type, const shape& b_dims, dtype b_type, bool in_file,
                           std::int64_t min_rows = 8) {
    const auto l = dot_layout(n, a, b_dims);
    const auto sbk = affine_stride(l.bk), sbn = affine_stride(l.bn);
    if (l.bb.size() != 1 || sbk < 0 || sbn < 0) return {};
    pack_plan p{.kind = pack_plan::form::none, .type = b_type, .k = static_cast<std::int64_t>(l.bk.size()),
                .n = static_cast<std::int64_t>(l.bn.size()), .sbk = sbk, .sbn = sbn};
    const bool floats = b_type == dtype::f32 || b_type == dtype::f16 || b_type == dtype::bf16;
    // Decode's x . W: copied [n, k] where W is read along n, or lies borrowed (an
    // mmapped file's 4 KiB pages); an owned W already [n, k] is read in place.
    if (l.am.size() == 1 && floats && p.n > 1 && p.k > 1 && (sbn == 1 || sbk == 1) && (sbk != 1 || in_file)) {
        p.kind = pack_plan::form::transposed;
        return p;
    }
    if (static_cast<std::int64_t>(l.am.size()) < min_rows || !floats) return {};
    p.kind = b_type == dtype::bf16 && a_type == dtype::bf16 && n.type == dtype::bf16 && simd::detail::bf16_pairs_preferred()
                 ? pack_plan::form::bf16_pairs
             : b_type == dtype::f16 && a_type == dtype::f16 && n.type == dtype::f16 && simd::detail::has_amx_bf16()
                 ? pack_plan::form::f16_split
                 : pack_plan::form::f32_panels;
    return p;
}

// b packed as `p` says.
inline packed_weight pack(const pack_plan& p, const array& b) {
    packed_weight w;
    const auto K = p.k, N = p.n, sbk = p.sbk, sbn = p.sbn;
    switch (p.kind) {
        case pack_plan::form::none: break;
        case pack_plan::form::transposed:
            w.transposed = array::uninitialized_in_huge_pages(b.type(), shape{{"n", N}, {"k", K}});
            if (b.type() == dtype::f32)
                gather_rows(reinterpret_cast<const float*>(b.data()), sbk, sbn, K, N, reinterpret_cast<float*>(w.transposed->mutable_data()));
            else
                gather_rows(reinterpret_cast<const std::uint16_t*>(b.data()), sbk, sbn, K, N,
                            reinterpret_cast<std::uint16_t*>(w.transposed->mutable_data()));
            break;
        case pack_plan::form::bf16_pairs:
            w.pairs = simd::packed_pairs(simd::basic_matrix_view<bfloat16>{reinterpret_cast<const bfloat16*>(b.data()), sbk, sbn}, K, N);
            break;
        case pack_plan::form::f16_split:
            w.f16 = simd::split_pairs(simd::basic_matrix_view<half>{reinterpret_cast<const half*>(b.data()), sbk, sbn}, K, N);
            break;
        case pack_plan::form::f32_panels:
            switch (b.type()) {
                case dtype::f32: w.f32 = simd::packed_matrix(simd::basic_matrix_view<float>{reinterpret_cast<const float*>(b.data()), sbk, sbn}, K, N); break;
                case dtype::f16: w.f32 = simd::packed_matrix(simd::basic_matrix_view<half>{reinterpret_cast<const half*>(b.data()), sbk, sbn}, K, N); break;
                case dtype::bf16: w.f32 = simd::packed_matrix(simd::basic_matrix_view<bfloat16>{reinterpret_cast<const bfloat16*>(b.data()), sbk, sbn}, K, N); break;
                default: break;
            }
            break;
    }
    return w;
}

// The bytes of w's one packed form (empty when w is).
inline std::span<const std::byte> packed_bytes(const packed_weight& w) {
    if (w.transposed) return {reinterpret_cast<const std::byte*>(w.transposed->data()), w.transposed->bytes()};
    if (w.pairs.rows()) return {reinterpret_cast<const std::byte*>(w.pairs.data()), w.pairs.bytes()};
    if (w.f16.rows()) return {reinterpret_cast<const std::byte*>(w.f16.data()), w.f16.bytes()};
    if (w.f32.rows()) return {reinterpret_cast<const std::byte*>(w.f32.data()), w.f32.bytes()};
    return {};
}

// The packed form `p` that another process made on a CPU with the same kernels
// (packed_bytes of it, saved), borrowed from `bytes`, which must outlive the
// result; `what` names it in the error when its size is not p's.
inline packed_weight borrow_packed(const pack_plan& p, std::span<const std::byte> bytes, const std::string& what) {
    if (p.kind == pack_plan::form::none || bytes.size() != p.bytes())
        throw error(what + ": " + std::to_string(bytes.size()) + " bytes, but the packed form " + p.key() + " takes " +
                    std::to_string(p.bytes()));
    const auto align = p.kind == pack_plan::form::transposed ? info(p.type).bytes : 4;
    if (reinterpret_cast<std::uintptr_t>(bytes.data()) % static_cast<std::uintptr_t>(align) != 0)
        throw error(what + ": its bytes are not aligned to " + std::to_string(align));
    packed_weight w;
    switch (p.kind) {
        case pack_plan::form::transposed:
            w.transposed = array::borrow(p.type, shape{{"n", p.n}, {"k", p.k}}, bytes.data(), bytes.size());
            break;
        case pack_plan::form::f32_panels: w.f32 = simd::packed_matrix::borrow(reinterpret_cast<const float*>(bytes.data()), p.k, p.n); break;
        case pack_plan::form::bf16_pairs: w.pairs = simd::packed_pairs::borrow(reinterpret_cast<const std::uint32_t*>(bytes.data()), p.k, p.n); break;
        case pack_plan::form::f16_split: w.f16 = simd::split_pairs::borrow(reinterpret_cast<const std::uint32_t*>(bytes.data()), p.k, p.n); break;
        default: break;
    }
    return w;
}

// The right operand of a float dot packed for the GEMM (plan_pack, then pack).
inline packed_weight pack_rhs(const node& n, const shape& a, dtype a_type, const array& b, bool in_file,
                              std::int64_t min_rows = 8) {
    return pack(plan_pack(n, a, a_type, b.dims(), b.type(), in_file, min_rows), b);
}

// dot as batched [B, M, K] x [B, K, N], accumulating in the compute type (f32
// for 16-bit floats, wrapping int64 for integers). `packed`: the right operand
// packed beforehand (pack_rhs), or null.
inline array dot(const node& n, const array& a, const array& b, thread_pool* pool = nullptr,
                 const packed_weight* packed = nullptr, const dot_plan* plan = nullptr) {
    std::optional<dot_plan> own;
    if (!plan) plan = &own.emplace(n, a.dims(), b.dims());
    const auto& [ab, am, ak, bb, bn, bk] = plan->at;
    const auto B = static_cast<std::int64_t>(ab.size()), M = static_cast<std::int64_t>(am.size()),
               N = static_cast<std::int64_t>(bn.size()), K = static_cast<std::int64_t>(ak.size());
    auto out = array::uninitialized(n.type, n.dims);
    if (packed && packed->empty()) packed = nullptr;
    // The result is returned by name, so it moves: `return float_dot(...), out;`
    // copied it (the comma's result is not a name), 12 MiB for BERT's FFN at batch
    // 8, 5 % of the product's time.
    if (n.type == dtype::f32) { float_dot<float>(a, b, *plan, out, pool, packed); return out; }
    if (n.type == dtype::f16) { float_dot<half>(a, b, *plan, out, pool, packed); return out; }
    if (n.type == dtype::bf16) { float_dot<bfloat16>(a, b, *plan, out, pool, packed); return out; }
    // The offsets are init-captures: Clang 15 cannot capture structured bindings.
    visit(n.type, [&, &ab = ab, &am = am, &ak = ak, &bb = bb, &bn = bn, &bk = bk](auto D) {
        using E = element<decltype(D)::value>;
        using C = typename E::compute;
        std::int64_t flat = 0;
        for (std::int64_t ib = 0; ib < B; ++ib)
            for (std::int64_t im = 0; im < M; ++im)
                for (std::int64_t in = 0; in < N; ++in) {
                    C acc{};
                    const auto oa = ab[static_cast<std::size_t>(ib)] + am[static_cast<std::size_t>(im)];
                    const auto ob = bb[static_cast<std::size_t>(ib)] + bn[static_cast<std::size_t>(in)];
                    for (std::int64_t ik = 0; ik < K; ++ik) {
                        const auto x = E::load(a.data(), oa + ak[static_cast<std::size_t>(ik)]);
                        const auto y = E::load(b.data(), ob + bk[static_cast<std::size_t>(ik)]);
                        if constexpr (std::is_same_v<C, bool>)
                            acc = acc || (x && y);
                        else
                            acc = binary_value<C>(op::add, acc, binary_value<C>(op::mul, x, y));
                    }
                    E::store(out.mutable_data(), flat++, acc);
                }
    });
    return out;
}

template <class C>
C reduce_identity(reducer r) {
    if constexpr (std::is_same_v<C, bool>) return r == reducer::min;
    else if (r == reducer::sum) return C(0);
    else if constexpr (std::is_floating_point_v<C>)
        return r == reducer::max ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::infinity();
    else
        return r == reducer::max ? std::numeric_limits<C>::min() : std::numeric_limits<C>::max();
}

template <class C>
C reduce_value(reducer r, C acc, C v) {
    if constexpr (std::is_same_v<C, bool>) {
        return r == reducer::min ? (acc && v) : (acc || v);
    } else {
        switch (r) {
            case reducer::sum: return binary_value<C>(op::add, acc, v);
            case reducer::max: return binary_value<C>(op::max, acc, v);
            case reducer::min: return binary_value<C>(op::min, acc, v);
        }
        return acc;
    }
}

// For each element of x, the flat index of its output once the axes are removed.
inline std::vector<std::int64_t> reduced_targets(const shape& in, const index& axes, const shape& out) {
    const auto os = strides_of(out);
    std::vector<std::int64_t> target(static_cast<std::size_t>(element_count(in)));
    for_each_index(in, [&](const index& idx, std::int64_t flat) {
        std::int64_t t = 0;
        for (std::size_t k = 0, o = 0; k < idx.size(); ++k)
            if (std::find(axes.begin(), axes.end(), static_cast<std::int64_t>(k)) == axes.end()) t += idx[k] * os[o++];
        target[static_cast<std::size_t>(flat)] = t;
    });
    return target;
}

// A float reduction over adjacent axes, [outer, reduced, inner], in f32 with SIMD:
// rows are reduced whole (inner = 1) or accumulated row by row (inner > 1). The
// work is split over the pool by output element (by outer index, and by pieces of
// inner), so each result has one order at any thread count. f16 and bf16 are
// widened a piece at a time into a per-thread block (and the results narrowed a
// piece at a time): widening the whole operand first cost a fresh buffer of its
// size in every run, 4.5x an f32 reduction's time in GPT-2's bf16 prefill.
// Returns false when the axes are not adjacent or the dtype is not a float.
inline bool reduce_float(const node& n, const array& x, array& out, thread_pool* pool) {
    const auto t = x.type();
    if (t != dtype::f32 && t != dtype::f16 && t != dtype::bf16) return false;
    index axes = n.axes;
    std::sort(axes.begin(), axes.end());
    for (std::size_t i = 1; i < axes.size(); ++i)
        if (axes[i] != axes[0] + static_cast<std::int64_t>(i)) return false;
    std::int64_t outer = 1, reduced = 1, inner = 1;
    for (std::int64_t k = 0; k < static_cast<std::int64_t>(x.dims().size()); ++k) {
        const auto e = x.dims()[static_cast<std::size_t>(k)].extent;
        if (k < axes.front()) outer *= e;
        else if (k <= axes.back()) reduced *= e;
        else inner *= e;
    }
    constexpr std::int64_t piece = 16384;  // elements widened at a time
    const bool wide = t == dtype::f32;
    const int which = n.reduction == reducer::sum ? 0 : n.reduction == reducer::max ? 1 : 2;
    const float identity = which == 0 ? 0.0f : which == 1 ? -std::numeric_limits<float>::infinity()
                                                          : std::numeric_limits<float>::infinity();
    // x's elements [at, at + count) as f32: in place, or widened into `to`.
    auto read = [&](std::int64_t at, std::int64_t count, float* to) -> const float* {
        if (wide) return reinterpret_cast<const float*>(x.data()) + at;
        if (t == dtype::f16) simd::widen(reinterpret_cast<const half*>(x.data()) + at, to, count);
        else simd::widen(reinterpret_cast<const bfloat16*>(x.data()) + at, to, count);
        return to;
    };
    // Results [at, at + count) of out from f32 (f32 results may be out's already).
    auto write = [&](std::int64_t at, const float* r, std::int64_t count) {
        if (t == dtype::f16) simd::narrow(r, reinterpret_cast<half*>(out.mutable_data()) + at, count);
        else if (t == dtype::bf16) simd::narrow(r, reinterpret_cast<bfloat16*>(out.mutable_data()) + at, count);
        else if (float* o = reinterpret_cast<float*>(out.mutable_data()) + at; o != r) std::copy(r, r + count, o);
    };
    auto reduce_row = [&](const float* v, std::int64_t count) { return simd::reduce(n.reduction, v, count); };
    // Work item w: row o = w / per_row and its piece of inner.
    const auto per_row = inner == 1 ? 1 : (inner + piece - 1) / piece;
    auto items = [&](std::int64_t w0, std::int64_t w1) {
        thread_local simd::aligned_vector<float> buffer;  // a widened piece of x, then a piece of results
        if (!wide && buffer.size() < 2 * piece) buffer.resize(2 * piece);
        float* const widened = buffer.data();
        float* const results = widened + (wide ? 0 : piece);
        if (inner == 1 && !wide && reduced <= piece) {  // short 16-bit rows, widened and narrowed many at a time
            for (auto w = w0; w < w1;) {
                const auto rows = std::min(w1 - w, piece / std::max<std::int64_t>(reduced, 1));
                const float* v = read(w * reduced, rows * reduced, widened);
                for (std::int64_t r = 0; r < rows; ++r) results[r] = reduce_row(v + r * reduced, reduced);
                write(w, results, rows);
                w += rows;
            }
            return;
        }
        for (auto w = w0; w < w1; ++w) {
            const auto o = w / per_row;
            const auto base = o * reduced * inner;
            if (inner == 1) {
                const auto step = wide ? std::max<std::int64_t>(reduced, 1) : piece;  // f32 rows are read whole, in place
                float r = reduce_row(read(base, std::min(step, reduced), widened), std::min(step, reduced));
                for (std::int64_t q = step; q < reduced; q += step) {
                    const auto c = std::min(step, reduced - q);
                    const float part = reduce_row(read(base + q, c, widened), c);
                    if (which == 0) r += part;
                    else if (!std::isnan(r)) r = std::isnan(part) ? part : which == 1 ? std::max(r, part) : std::min(r, part);  // a NaN stays
                }
                write(o, &r, 1);
                continue;
            }
            const auto i0 = (w % per_row) * piece, count = std::min(piece, inner - i0);
            float* dst = wide ? reinterpret_cast<float*>(out.mutable_data()) + o * inner + i0 : results;
            std::fill(dst, dst + count, identity);
            for (std::int64_t j = 0; j < reduced; ++j) simd::accumulate(which, read(base + j * inner + i0, count, widened), dst, count);
            write(o * inner + i0, dst, count);
        }
    };
    const auto work = outer * per_row;
    if (pool && pool->size() > 1 && work >= static_cast<std::int64_t>(pool->size()) && x.size() >= 32768)
        pool->run([&](unsigned th) {
            const auto [w0, w1] = pool->part(work, th);
            items(w0, w1);
        });
    else
        items(0, work);
    return true;
}

// Integer reductions of narrow types wrap at their width, step by step as XLA's do.
inline array reduce(const node& n, const array& x, thread_pool* pool = nullptr) {
    auto out = array::uninitialized(n.type, n.dims);  // every element is written below
    if (reduce_float(n, x, out, pool)) return out;
    const auto target = reduced_targets(x.dims(), n.axes, n.dims);
    visit(n.type, [&](auto D) {
        using E = element<decltype(D)::value>;
        using C = typename E::compute;
        using A = std::conditional_t<std::is_same_v<C, bool>, unsigned char, C>;  // no vector<bool> proxies
        std::vector<A> acc(static_cast<std::size_t>(out.size()), reduce_identity<C>(n.reduction));
        for (std::int64_t i = 0; i < x.size(); ++i) {
            auto& a = acc[static_cast<std::size_t>(target[static_cast<std::size_t>(i)])];
            a = reduce_value<C>(n.reduction, static_cast<C>(a), E::load(x.data(), i));
            if constexpr (std::is_integral_v<C> && !std::is_same_v<C, bool>)
                a = static_cast<C>(static_cast<typename E::storage>(a));
        }
        for (std::int64_t i = 0; i < out.size(); ++i)
            E::store(out.mutable_data(), i, static_cast<C>(acc[static_cast<std::size_t>(i)]));
    });
    return out;
}

// The index of the first largest element along the one reduced axis.
inline array argmax(const node& n, const array& x) {
    array out(n.type, n.dims);
    const auto target = reduced_targets(x.dims(), n.axes, n.dims);
    const auto axis = static_cast<std::size_t>(n.axes.at(0));
    const auto stride = strides_of(x.dims())[axis];
    const auto extent = x.dims()[axis].extent;
    visit(x.type(), [&](auto D) {
        using E = element<decltype(D)::value>;
        using C = typename E::compute;
        std::vector<C> best(static_cast<std::size_t>(out.size()));
        std::vector<std::int64_t> arg(static_cast<std::size_t>(out.size()), -1);
        for (std::int64_t i = 0; i < x.size(); ++i) {
            const auto t = static_cast<std::size_t>(target[static_cast<std::size_t>(i)]);
            const auto v = E::load(x.data(), i);
            if (arg[t] < 0 || v > best[t]) {
                best[t] = v;
                arg[t] = (i / stride) % extent;
            }
        }
        for (std::int64_t i = 0; i < out.size(); ++i)
            element<dtype::s32>::store(out.mutable_data(), i, arg[static_cast<std::size_t>(i)]);
    });
    return out;
}

// --- collectives, over the operands of every replica of one group ----------

inline array all_reduce(const node& n, const std::vector<const array*>& xs) {
    array out(n.type, n.dims);
    visit(n.type, [&](auto D) {
        using E = element<decltype(D)::value>;
        using C = typename E::compute;
        for (std::int64_t i = 0; i < out.size(); ++i) {
            C acc = reduce_identity<C>(n.reduction);
            for (const auto* x : xs) acc = reduce_value<C>(n.reduction, acc, E::load(x->data(), i));
            E::store(out.mutable_data(), i, acc);
        }
    });
    return out;
}

inline array all_gather(const node& n, const std::vector<const array*>& xs) { return concatenate(n, xs); }

// stochastic_round_bf16(x, noise) (ops/random.hpp, matched by
// match_stochastic_round) in one pass: the low 16 bits of each noise word added
// to x's bits, truncated to bf16; a NaN converted as convert does.
inline array stochastic_round_bf16(const node& n, const array& x, const array& noise, thread_pool* pool) {
    auto out = array::uninitialized(dtype::bf16, n.dims);
    const auto* xs = reinterpret_cast<const std::uint32_t*>(x.data());
    const auto* rs = reinterpret_cast<const std::uint32_t*>(noise.data());
    auto* ys = reinterpret_cast<std::uint16_t*>(out.mutable_data());
    over_columns(pool, x.size(), 4096, [&](std::int64_t i0, std::int64_t i1) {
        for (auto i = i0; i < i1; ++i) ys[i] = static_cast<std::uint16_t>((xs[i] + (rs[i] & 0xFFFFu)) >> 16);
        for (auto i = i0; i < i1; ++i)  // NaNs (rare): as convert<bf16>
            if ((xs[i] & 0x7FFFFFFFu) > 0x7F800000u)
                store_as(dtype::bf16, load_as_double(dtype::f32, x.data() + 4 * i), out.mutable_data() + 2 * i);
    });
    return out;
}

}  // namespace scribe::cpu::kernels
