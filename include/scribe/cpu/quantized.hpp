// scribe/cpu/quantized.hpp — q8 and q4 weights (ops/quantize.hpp) on the CPU: a
// weight quantized when it is loaded, and the products and gathers that read q
// and scale directly.
//
// The graph reads a q8 weight as convert/multiply/broadcast/reshape/transpose
// nodes (a q4 weight also through and/shift/concatenate); evaluated as written,
// they would make the whole f32 weight on every run.
// The executor instead recognises (match_q8) a dot whose right operand, or a
// gather whose table, is such a weight, and runs it from the parameters q and
// scale (q8_product): one-row products stream 34 bytes per 32 weights
// (simd/q8.hpp; int8 x int8 sums where the CPU has AVX-512 VNNI or AVX2 and the
// input is the graph's q8 input, simd/q8_q8.hpp); products of many rows pack 256
// rows of W at a time for an integer GEMM (simd/q8_gemm.hpp: AVX-512 VNNI, or
// AVX2 for q4) or widen them to f32 for the f32 GEMM; a gather widens the rows
// it picks. A q4
// weight's products are the same with 18 bytes per 32 weights (simd/q4.hpp).
// Anything else reading the weight sees it computed by the nodes, as written.
#pragma once

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../ops/quantize.hpp"
#include "kernels.hpp"
#include "linalg.hpp"
#include "simd/q4.hpp"
#include "simd/q8.hpp"
#include "simd/q8_gemm.hpp"
#include "simd/q8_q8.hpp"

namespace scribe::cpu {

// w (a weight's declared dims, f32) stored as layout l (q8 or q4): {q, scale}.
// `what` names the weight in errors.
inline std::pair<array, array> quantize_q8(const array& w, const q8::layout& l, const std::string& what) {
    if (w.type() != dtype::f32 || element_count(w.dims()) != l.rows * l.k)
        throw error(what + ": quantize_q8 needs the weight in f32 as declared " + to_string(l.value));
    const auto* src = reinterpret_cast<const float*>(w.data());
    std::vector<float> moved;
    if (l.transposed()) {  // into [out..., in...] order
        const auto declared = kernels::strides_of(w.dims());
        kernels::index strides(l.value.size());
        for (std::size_t d = 0; d < l.perm.size(); ++d) strides[static_cast<std::size_t>(l.perm[d])] = declared[d];
        moved.resize(static_cast<std::size_t>(l.rows * l.k));
        kernels::for_each_index(l.value, [&](const kernels::index& idx, std::int64_t flat) {
            std::int64_t at = 0;
            for (std::size_t d = 0; d < idx.size(); ++d) at += idx[d] * strides[d];
            moved[static_cast<std::size_t>(flat)] = src[at];
        });
        src = moved.data();
    }
    const bool q4 = l.format == weight_format::q4;
    auto q = array::uninitialized_in_huge_pages(q8::storage(l.format).type, l.q);
    auto scale = array::uninitialized(dtype::f16, l.scale);
    auto* ss = reinterpret_cast<std::uint16_t*>(scale.mutable_data());
    const auto bad = q4 ? simd::quantize_q4_rows(src, l.rows, l.k, reinterpret_cast<std::uint8_t*>(q.mutable_data()), ss)
                        : simd::quantize_q8_rows(src, l.rows, l.k, reinterpret_cast<std::int8_t*>(q.mutable_data()), ss);
    if (bad >= 0)
        throw error(what + ": row " + std::to_string(bad) + " holds a NaN, an infinity or a value beyond " + (q4 ? "8" : "127") +
                    " x 65504 (what an f16 block scale holds), so the weight cannot be stored in " + (q4 ? "4" : "8") +
                    "-bit blocks; run the model in f32, f16 or bf16");
    return {std::move(q), std::move(scale)};
}

// Adds w to `out` as a q8 or q4 weight of layout l: q under `name`, the scales under
// q8::scale_name(name) (the parameters the graph reads it from).
inline void add_q8(named_arrays& out, const std::string& name, const array& w, const q8::layout& l, const std::string& what) {
    auto [q, scale] = quantize_q8(w, l, what);
    out.emplace_back(name, std::move(q));
    out.emplace_back(q8::scale_name(name), std::move(scale));
}

// The weight q and scale of layout l hold, as f32 in its declared dims `dims`:
// the values the graph reads.
inline array dequantize_q8(const array& q, const array& scale, const q8::layout& l, const shape& dims) {
    std::vector<float> value(static_cast<std::size_t>(l.rows * l.k));
    const auto* ss = reinterpret_cast<const std::uint16_t*>(scale.data());
    if (l.format == weight_format::q4)
        simd::dequantize_q4_rows(reinterpret_cast<const std::uint8_t*>(q.data()), ss, l.rows, l.k, value.data());
    else
        simd::dequantize_q8_rows(reinterpret_cast<const std::int8_t*>(q.data()), ss, l.rows, l.k, value.data());
    auto out = array::uninitialized(dtype::f32, dims);
    const auto vs = kernels::strides_of(l.value);
    auto* o = reinterpret_cast<float*>(out.mutable_data());
    kernels::for_each_index(dims, [&](const kernels::index& idx, std::int64_t flat) {
        std::int64_t at = 0;
        for (std::size_t d = 0; d < idx.size(); ++d) at += idx[d] * vs[static_cast<std::size_t>(l.perm[d])];
        o[flat] = value[static_cast<std::size_t>(at)];
    });
    return out;
}

// w's values after q8 or q4 storage (quantized, then read back), in its own dims.
inline array round_trip_q8(const array& w, const q8::layout& l, const std::string& what) {
    const auto [q, scale] = quantize_q8(w, l, what);
    return dequantize_q8(q, scale, l, w.dims());
}

namespace kernels {

// A value that is a q8 or q4 weight read back: the parameters q and scale, the
// weight as a [rows][k] matrix, and the strides of the value's own dims in it.
struct q8_operand {
    node_id q = -1, scale = -1;
    std::int64_t rows = 0, k = 0;
    index strides;
    weight_format format = weight_format::q8;
};

// The q8 weight node `id` is (q8::match), or nullopt.
inline std::optional<q8_operand> match_q8(const graph& g, node_id id) {
    const auto w = q8::match(g, id);
    if (!w) return std::nullopt;
    const auto& q = g[w->q].dims;
    q8_operand m{.q = w->q, .scale = w->scale, .rows = 1, .k = q[q.size() - 2].extent * simd::q8_block, .strides = {}, .format = w->format};
    for (std::size_t i = 0; i < w->outs; ++i) m.rows *= q[i].extent;
    const auto vs = strides_of(w->value);
    if (w->perm.empty()) {
        m.strides = vs;
    } else {
        for (auto p : w->perm) m.strides.push_back(vs[static_cast<std::size_t>(p)]);
    }
    return m;
}

// Where a q8 dot's left operand keeps its rows and k, and whether they are
// plain rows in place ([M][K] from offset 0), found once per executor.
struct q8_lhs {
    dot_offsets at;
    bool rows = false;
};

inline q8_lhs q8_lhs_of(const node& n, const shape& x) {
    q8_lhs l{dot_lhs_layout(n, x), false};
    const auto K = static_cast<std::int64_t>(l.at.ak.size());
    l.rows = affine_stride(l.at.ak) == 1 && (l.at.am.size() <= 1 || affine_stride(l.at.am) == K) && l.at.ab.size() == 1 && l.at.ab[0] == 0;
    return l;
}

// A dot (f32, the weight its right operand, contracted over all of k) or a
// gather (rows of a [rows, k] table) that runs from the weight's q and scale;
// `other` is the dot's left operand or the gather's ids.
struct q8_product {
    q8_operand weight;
    node_id other = -1;
    bool gather = false;
    q8_lhs lhs;  // a dot's
};

inline std::optional<q8_product> q8_product_of(const graph& g, const node& n) {
    if (n.kind == op::gather) {
        auto w = match_q8(g, n.operands[0]);
        if (!w || n.axes.at(0) != 0 || w->strides != index{w->k, 1} || !is_float(n.type)) return std::nullopt;
        return q8_product{*w, n.operands[1], true, {}};
    }
    if (n.kind != op::dot || n.type != dtype::f32 || g[n.operands[0]].type != dtype::f32 || !n.dot.rhs_batch.empty())
        return std::nullopt;
    auto w = match_q8(g, n.operands[1]);
    if (!w) return std::nullopt;
    // The weight's offsets in [rows][k] over the contracted dims must be 0..k-1
    // and over the free ones j * k: the product is x . W^T, W's rows whole.
    const auto& dims = g[n.operands[1]].dims;
    auto offsets = [&](const index& axes) {
        shape sub;
        for (auto a : axes) sub.push_back(dims[static_cast<std::size_t>(a)]);
        std::vector<std::int64_t> out;
        for_each_index(sub, [&](const index& idx, std::int64_t) {
            std::int64_t o = 0;
            for (std::size_t k = 0; k < idx.size(); ++k) o += idx[k] * w->strides[static_cast<std::size_t>(axes[k])];
            out.push_back(o);
        });
        return out;
    };
    index free;
    for (std::int64_t a = 0; a < static_cast<std::int64_t>(dims.size()); ++a)
        if (std::find(n.dot.rhs_contracting.begin(), n.dot.rhs_contracting.end(), a) == n.dot.rhs_contracting.end()) free.push_back(a);
    const auto bk = offsets(n.dot.rhs_contracting), bn = offsets(free);
    if (static_cast<std::int64_t>(bk.size()) != w->k || static_cast<std::int64_t>(bn.size()) != w->rows) return std::nullopt;
    for (std::size_t i = 0; i < bk.size(); ++i)
        if (bk[i] != static_cast<std::int64_t>(i)) return std::nullopt;
    for (std::size_t j = 0; j < bn.size(); ++j)
        if (bn[j] != static_cast<std::int64_t>(j) * w->k) return std::nullopt;
    return q8_product{*w, n.operands[0], false, q8_lhs_of(n, g[n.operands[0]].dims)};
}

// Rows [r0, r0 + rows) of a q8 or q4 weight (q and scale as stored, K deep), over
// k in [k0, k0 + kb), widened into the GEMM micro-kernel's panels of nr columns,
// k-major and zero-padded, as simd::detail::pack_b lays out a B: 8 rows
// at a time widened over their whole blocks into a few KiB (L1), then transposed
// 8 x 8 in registers. (Widening a panel of 256 rows into a block of its own first,
// 3 MiB at K = 3072, and packing that for the GEMM wrote and read the weight in
// f32 twice more, through L3.)
inline void widen_q8_panels(const std::uint8_t* qs, const std::uint16_t* ss, bool q4, std::int64_t K, std::int64_t r0, std::int64_t rows,
                            std::int64_t k0, std::int64_t kb, std::int64_t nr, float* out) {
    const auto blocks = K / simd::q8_block, b0 = k0 / simd::q8_block, b1 = (k0 + kb + simd::q8_block - 1) / simd::q8_block;
    const auto row_bytes = q4 ? blocks * simd::q4_bytes : K;
    const auto span = (b1 - b0) * simd::q8_block, skip = k0 - b0 * simd::q8_block;
    thread_local simd::aligned_vector<float> rows8;
    rows8.resize(static_cast<std::size_t>(8 * span));
    for (std::int64_t j = 0; j < rows; j += nr, out += nr * kb) {
        const auto w = std::min(nr, rows - j);
        for (std::int64_t x = 0; x < w; x += 8) {
            const auto h = std::min<std::int64_t>(8, w - x);
            for (std::int64_t y = 0; y < h; ++y) {
                const auto r = r0 + j + x + y;
                float* to = rows8.data() + y * span;
                if (q4)
                    simd::dequantize_q4_rows(qs + r * row_bytes + b0 * simd::q4_bytes, ss + r * blocks + b0, 1, span, to);
                else
                    simd::dequantize_q8_rows(reinterpret_cast<const std::int8_t*>(qs) + r * K + b0 * simd::q8_block, ss + r * blocks + b0, 1, span, to);
            }
#ifdef SCRIBE_X86
            if (h == 8 && simd::detail::has_avx2_fma_f16c()) {
                simd::detail::pack_columns8_avx2(rows8.data() + skip, span, kb, nr, out + x);
                continue;
            }
#endif
            for (std::int64_t k = 0; k < kb; ++k)
                for (std::int64_t y = 0; y < h; ++y) out[k * nr + x + y] = rows8[static_cast<std::size_t>(y * span + skip + k)];
        }
        if (w < nr)
            for (std::int64_t k = 0; k < kb; ++k) std::fill(out + k * nr + w, out + (k + 1) * nr, 0.0f);
    }
}

// The dot n = x . W^T with W from q and scale in `format`; `rhs` is the dot's
// right operand's shape, `lhs` (found when null) where x keeps its rows and k.
inline array q8_dot(const node& n, const array& x, const array& q, const array& scale, const shape& rhs, weight_format format,
                    thread_pool* pool, const q8_lhs* lhs = nullptr) {
    std::optional<q8_lhs> own;
    const auto& ll = lhs ? *lhs : own.emplace(q8_lhs_of(n, x.dims()));
    const auto& l = ll.at;  // W's rows are [N, K] (match_q8 checked)
    const auto M = static_cast<std::int64_t>(l.am.size()), K = static_cast<std::int64_t>(l.ak.size()),
               N = element_count(rhs) / K;
    auto out = array::uninitialized(dtype::f32, n.dims);
    const auto* xs = reinterpret_cast<const float*>(x.data());
    std::vector<float> rows;
    if (!ll.rows) {
        rows.resize(static_cast<std::size_t>(M * K));
        for (std::int64_t m = 0; m < M; ++m)
            for (std::int64_t i = 0; i < K; ++i)
                rows[static_cast<std::size_t>(m * K + i)] = xs[l.ab[0] + l.am[static_cast<std::size_t>(m)] + l.ak[static_cast<std::size_t>(i)]];
        xs = rows.data();
    } else if (M > 0) {
        xs += l.am[0];
    }
    const bool q4 = format == weight_format::q4;
    const auto row_bytes = K / simd::q8_block * q8::storage(format).bytes;  // of q
    const auto* qs = reinterpret_cast<const std::uint8_t*>(q.data());
    const auto* ss = reinterpret_cast<const std::uint16_t*>(scale.data());
    auto* y = reinterpret_cast<float*>(out.mutable_data());
    const auto blocks = K / simd::q8_block;
    // x a q8 input (as the graph makes it): integer products. Decode (up to 16
    // rows, as batched decode makes them) streams W's rows (int8 x int8 or int4
    // sums); with several rows, W goes in slices of about 256 KiB, read from
    // memory once and from cache for the other rows. More rows (a prefill) pack
    // 256 of W's rows at a time for the integer GEMM (simd/q8_gemm.hpp).
    const bool gemm = M > 16 && simd::q8_gemm_fast(q4);
    if (gemm || (M <= 16 && (q4 || simd::q8_q8_fast()))) {
        std::vector<std::int8_t> qx(static_cast<std::size_t>(M * K));
        std::vector<float> dx(static_cast<std::size_t>(M * blocks));
        bool exact = true;
        for (std::int64_t m = 0; m < M && exact; ++m)
            exact = simd::q8_input_of(xs + m * K, K, qx.data() + m * K, dx.data() + m * blocks);
        if (exact && gemm) {
            const simd::q8_gemm_input in(qx.data(), dx.data(), M, K, q4 ? 8 : 128);
            constexpr std::int64_t panel = 256;
            over_columns(pool, N, 16, [&](std::int64_t n0, std::int64_t n1) {
                simd::q8_panel p;
                for (std::int64_t c0 = n0; c0 < n1; c0 += panel) {
                    const auto nb = std::min(panel, n1 - c0);
                    if (q4)
                        simd::pack_q4_panel(qs + c0 * row_bytes, ss + c0 * blocks, nb, K, p);
                    else
                        simd::pack_q8_panel(reinterpret_cast<const std::int8_t*>(qs) + c0 * K, ss + c0 * blocks, nb, K, p);
                    simd::q8_gemm(in, p, y + c0, N);
                }
            });
            return out;
        }
        if (exact) {
            const auto slice = M == 1 ? N : std::max<std::int64_t>(16, (std::int64_t{256} << 10) / (row_bytes + 2 * blocks));
            over_columns(pool, N, 16, [&](std::int64_t n0, std::int64_t n1) {
                std::vector<float> part(static_cast<std::size_t>(std::min(slice, n1 - n0)));
                for (std::int64_t s0 = n0; s0 < n1; s0 += slice) {
                    const auto ns = std::min(slice, n1 - s0);
                    for (std::int64_t m = 0; m < M; ++m) {
                        if (q4)
                            simd::q4_q8_dots(ns, K, qx.data() + m * K, dx.data() + m * blocks, qs + s0 * row_bytes, ss + s0 * blocks, part.data());
                        else
                            simd::q8_q8_dots(ns, K, qx.data() + m * K, dx.data() + m * blocks, reinterpret_cast<const std::int8_t*>(qs) + s0 * K,
                                             ss + s0 * blocks, part.data());
                        std::memcpy(y + m * N + s0, part.data(), static_cast<std::size_t>(ns) * sizeof(float));
                    }
                }
            });
            return out;
        }
    }
    if (M < 4 && !q4) {  // decode: each row of W streamed once per row of x
        over_columns(pool, N, 16, [&](std::int64_t n0, std::int64_t n1) {
            std::vector<float> part(static_cast<std::size_t>(n1 - n0));
            for (std::int64_t m = 0; m < M; ++m) {
                simd::q8_dots(n1 - n0, K, xs + m * K, reinterpret_cast<const std::int8_t*>(qs) + n0 * K, ss + n0 * blocks, part.data());
                std::memcpy(y + m * N + n0, part.data(), part.size() * sizeof(float));
            }
        });
        return out;
    }
    // A panel of 256 of W's rows at a time, widened to f32 straight into the GEMM's
    // packed panels (widen_q8_panels) as the GEMM walks its k blocks: narrower
    // panels re-read x once each (16 rows of k = 3072 made the product 2.7x slower).
    constexpr std::int64_t panel = 256;
    over_columns(pool, N, 16, [&](std::int64_t n0, std::int64_t n1) {
        for (std::int64_t c0 = n0; c0 < n1; c0 += panel) {
            const auto nb = std::min(panel, n1 - c0);
            const auto choice = simd::detail::choose_kernel(nb);
            thread_local simd::aligned_vector<float> packed;
            packed.resize(static_cast<std::size_t>(simd::detail::k_step(K, choice.kc) * ((nb + choice.nr - 1) / choice.nr * choice.nr)));
            simd::detail::gemm_blocked(choice, M, nb, K, simd::basic_matrix_view<float>{xs, K, 1},
                                       [&](std::int64_t k0, std::int64_t kb, std::int64_t p0, std::int64_t pb) {
                                           widen_q8_panels(qs, ss, q4, K, c0 + p0, pb, k0, kb, choice.nr, packed.data());
                                           return static_cast<const float*>(packed.data());
                                       },
                                       y + c0, N);
        }
    });
    return out;
}

// A q8 product's input (ops/quantize.hpp's quantize_input, matched by
// q8::match_input): the blocks of xb quantized and read back in one pass.
inline array q8_input(const node& n, const array& xb, thread_pool* pool) {
    auto out = array::uninitialized(dtype::f32, n.dims);
    const auto* x = reinterpret_cast<const float*>(xb.data());
    auto* y = reinterpret_cast<float*>(out.mutable_data());
    over_columns(pool, xb.size() / simd::q8_block, 64, [&](std::int64_t b0, std::int64_t b1) {
        simd::q8_read_back_blocks(x + b0 * simd::q8_block, b1 - b0, y + b0 * simd::q8_block);
    });
    return out;
}

// The gather n of rows of a [rows, k] q8 or q4 table: out[k-dim, ids...].
inline array q8_gather(const node& n, const array& q, const array& scale, const array& ids, std::int64_t rows, std::int64_t K,
                       weight_format format) {
    auto out = array::uninitialized(n.type, n.dims);
    const auto count = ids.size();
    const auto* qs = reinterpret_cast<const std::uint8_t*>(q.data());
    const auto* ss = reinterpret_cast<const std::uint16_t*>(scale.data());
    const auto row_bytes = K / simd::q8_block * q8::storage(format).bytes;
    std::vector<float> row(static_cast<std::size_t>(K));
    for (std::int64_t j = 0; j < count; ++j) {
        std::int64_t id = 0;
        visit(ids.type(), [&](auto D) { id = static_cast<std::int64_t>(element<decltype(D)::value>::load(ids.data(), j)); });
        id = std::clamp<std::int64_t>(id, 0, rows - 1);
        if (format == weight_format::q4)
            simd::dequantize_q4_rows(qs + id * row_bytes, ss + id * (K / simd::q8_block), 1, K, row.data());
        else
            simd::dequantize_q8_rows(reinterpret_cast<const std::int8_t*>(qs) + id * K, ss + id * (K / simd::q8_block), 1, K, row.data());
        visit(n.type, [&](auto D) {
            using E = element<decltype(D)::value>;
            for (std::int64_t i = 0; i < K; ++i) E::store(out.mutable_data(), i * count + j, row[static_cast<std::size_t>(i)]);
        });
    }
    return out;
}

}  // namespace kernels
}  // namespace scribe::cpu
