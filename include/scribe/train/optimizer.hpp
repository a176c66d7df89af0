// scribe/train/optimizer.hpp — the optimizer update as part of the step graph:
// gradients, global-norm clipping, SGD or AdamW, the learning-rate schedule and
// gradient accumulation, appended to the graph that computes the loss. One step is
// one graph run; the weights and the optimizer state are parameters aliased to
// the outputs that update them (input_output_alias in HLO, donated buffers on the
// CPU), so nothing is copied.
//
//     graph g("step");
//     auto loss = train::causal_lm_loss<models::gpt2_family, f32>(g, c, {.batch = 4, .seq = 256});
//     auto plan = train::append_update(g, loss.id(), weight ids, {.method = train::adamw{}, .lr = {.lr = 3e-4}});
//     // g's outputs: loss, grad_norm, the updated weights, the updated state (plan names them)
//
// The arithmetic is PyTorch's, operation for operation, in f32 (whatever the
// weights' dtype: they are converted for the update and back):
//
//   SGD    d = g + wd p;  b = momentum b + (1 - dampening) d  (b = d at the first step);
//          d = nesterov ? d + momentum b : b;  p = p - lr d
//   AdamW  p = p (1 - lr wd);  m = m + (1 - beta1)(g - m);  v = v beta2 + (1 - beta2) g g;
//          p = p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// with t the step's number from 1 (torch.optim.SGD and torch.optim.AdamW, whose
// single-tensor CPU path this follows; 1 - beta^t is computed as -expm1(t log beta)
// so it stays exact in f32 where beta^t is near 1). Weight decay applies to the
// weights `decays` picks by name, by default all of them (torch's default with one
// parameter group). A model's trainer decays the weights its checkpoint stores
// with rank 2 or more (matrices and embeddings, not biases or norm scales), as
// Hugging Face's Trainer groups them; the graph's view of a weight is no guide
// (GPT-2's c_attn bias is [qkv, heads, head_dim] there).
//
// Clipping is torch.nn.utils.clip_grad_norm_: the global norm is the 2-norm of the
// per-weight 2-norms, every gradient is multiplied by min(1, clip / (norm + 1e-6)).
// The norm (before clipping) is an output either way, for the logs.
//
// Accumulating over k micro-batches, as loss / k backpropagated k times into the
// same .grad: the graph of the first micro-batch outputs its gradients (f32, one
// "accumulated.<w>" per weight), a middle one adds its own to them, and the last
// adds its own, clips and updates. Each is one run; k = 1 is the single `whole`
// graph.
//
// Data parallelism (update_options::dp): N replicas run the same graph, each on
// its own slice of the global batch. The last (or whole) pass averages the
// replicas' gradients before the norm, the clipping and the update: the
// gradients are flattened into buckets of about dp.bucket_bytes, in the order
// the backward pass makes them (the last layers' first, as PyTorch's DDP fills
// its buckets), each bucket all-reduced (a sum, in f32) and divided by N. Every
// replica then takes the same step from the same weights. The loss output is
// the replicas' mean too (each pass's: the loss of the global micro-batch when
// the slices hold the same number of tokens). Micro-batches before the last add
// to their own replica's accumulators only, as DDP's no_sync does.
//
// Weights held in bf16 (mixed precision, as PyTorch NeuronX trains): the update
// is computed in f32 either way and its result rounded back to the weight's
// dtype, to nearest (rounding::nearest: an update smaller than half a bf16 step
// is lost) or stochastically (rounding::stochastic: stochastic_round_bf16, up or
// down with the probabilities that make the rounding unbiased; its random bits
// keyed by update_options::seed and the step counter, and counted across the
// weights in their order, so every replica rounds alike and the CPU and XLA
// round bit for bit; the bits come from a table of 2^20 Threefry words a step,
// detail::noise_table, that the weights' elements take in turn). With master_weights, the optimizer keeps an f32 copy of
// each narrower weight ("optimizer.master.<w>", taken from the weight at step
// 0): the update reads and writes the master, and the weight the model reads is
// the master rounded. The gradients are f32 from the backward pass's end on
// (accumulation, averaging, clipping) in every mode.
//
// Parameters the update adds: "optimizer.step" (s32 scalar: steps taken so far),
// "optimizer.exp_avg.<w>" and "optimizer.exp_avg_sq.<w>" (AdamW) or
// "optimizer.momentum_buffer.<w>" (SGD with momentum), "optimizer.master.<w>"
// (master_weights), f32 in the weight's dims;
// "accumulated.<w>" in the middle and last graphs. All start at zero.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "../graph/grad.hpp"
#include "../ops/random.hpp"
#include "schedule.hpp"

namespace scribe::train {

struct sgd {
    double momentum = 0, dampening = 0, weight_decay = 0;
    bool nesterov = false;
};

struct adamw {
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

using optimizer = std::variant<sgd, adamw>;

// How an updated weight held in bf16 is rounded from the f32 update.
enum class rounding { nearest, stochastic };

// Which micro-batch of an accumulated step a graph runs.
enum class pass { whole, first, middle, last };

// The passes a step of `accumulate` micro-batches runs, in order (a middle pass
// repeats for the micro-batches between the first and the last).
inline std::vector<pass> passes(std::int64_t accumulate) {
    if (accumulate <= 1) return {pass::whole};
    if (accumulate == 2) return {pass::first, pass::last};
    return {pass::first, pass::middle, pass::last};
}
inline const char* name(pass p) {
    switch (p) {
        case pass::whole: return "step";
        case pass::first: return "first";
        case pass::middle: return "middle";
        case pass::last: return "last";
    }
    return "step";
}

// How the replicas of a data-parallel step average their gradients.
struct data_parallel {
    std::int64_t replicas = 1;  // 1: no averaging
    // The replicas that average together (each a group of `replicas` ids); empty:
    // one group of all, 0 .. replicas-1.
    std::vector<std::vector<std::int64_t>> groups{};
    std::int64_t bucket_bytes = std::int64_t{25} << 20;  // DDP's default bucket_cap_mb
};

struct update_options {
    optimizer method = adamw{};
    schedule lr{};
    double clip = 0;               // the largest global gradient norm; 0: no clipping
    std::int64_t accumulate = 1;   // micro-batches per step: the loss is divided by it
    // Whether weight decay applies to a weight, by its parameter's name; empty: all.
    std::function<bool(const std::string&)> decays{};
    data_parallel dp{};            // averaging over data-parallel replicas
    // Weights narrower than f32 (bf16): how the update rounds them, the seed of
    // stochastic rounding, and whether the optimizer keeps f32 masters of them.
    rounding round = rounding::nearest;
    std::uint64_t seed = 0;
    bool master_weights = false;
};

// What append_update made: the parameters it reads and updates, by name, and the
// graph's outputs in order.
struct update_plan {
    std::vector<std::string> weights;       // updated in place (aliased), in output order
    std::vector<std::string> state;         // optimizer state, aliased likewise; "optimizer.step" first
    std::vector<std::string> accumulators;  // "accumulated.<w>": outputs of first/middle, inputs of middle/last
    std::vector<std::string> outputs;       // "loss", then "grad_norm" (whole and last), then the above, by name
};

namespace detail {

inline void check(const update_options& o) {
    o.lr.check();
    auto finite = [](double v, const char* what, bool positive) {
        if (!std::isfinite(v) || v < 0 || (positive && v == 0))
            throw error(std::string("optimizer: ") + what + " is " + checked::shown(v) + "; it must be a finite number " +
                        (positive ? "> 0" : ">= 0"));
    };
    finite(o.clip, "clip", false);
    if (o.accumulate < 1) throw error("optimizer: accumulate is " + std::to_string(o.accumulate) + "; it must be >= 1 micro-batch");
    if (o.dp.replicas < 1 || o.dp.replicas > 1 << 20)
        throw error("optimizer: data parallelism over " + std::to_string(o.dp.replicas) + " replicas; it needs 1 or more");
    if (o.dp.bucket_bytes < 1) throw error("optimizer: a gradient bucket of " + std::to_string(o.dp.bucket_bytes) + " bytes; it needs 1 or more");
    for (const auto& group : o.dp.groups) {
        if (static_cast<std::int64_t>(group.size()) != o.dp.replicas)
            throw error("optimizer: a data-parallel replica group of " + std::to_string(group.size()) + " replicas, the step has " +
                        std::to_string(o.dp.replicas));
        for (auto r : group)
            if (r < 0) throw error("optimizer: replica id " + std::to_string(r) + " in a data-parallel group");
    }
    if (const auto* s = std::get_if<sgd>(&o.method)) {
        finite(s->momentum, "momentum", false);
        finite(s->weight_decay, "weight_decay", false);
        if (s->dampening < 0 || s->dampening > 1) throw error("optimizer: dampening " + checked::shown(s->dampening) + " must lie in [0, 1]");
        if (s->nesterov && (s->momentum == 0 || s->dampening != 0))
            throw error("optimizer: Nesterov momentum needs a momentum > 0 and no dampening");
    } else {
        const auto& a = std::get<adamw>(o.method);
        for (auto [b, n] : {std::pair{a.beta1, "beta1"}, std::pair{a.beta2, "beta2"}})
            if (!(b >= 0 && b < 1)) throw error(std::string("optimizer: ") + n + " " + checked::shown(b) + " must lie in [0, 1)");
        finite(a.eps, "eps", true);
        finite(a.weight_decay, "weight_decay", false);
    }
}

// s broadcast to x's dims (a scalar times a tensor).
inline node_id times(graph& g, node_id x, node_id s) {
    return ir::binary(g, op::mul, x, ir::broadcast(g, s, ir::dims_of(g, x), {}));
}

SCRIBE_DIM(rounded_elements);

// Stochastic rounding's bits for a step: a table of noise_entries Threefry words
// (key: the seed and the step), of which the weights take consecutive entries,
// wrapping around, each weight from where the one before ended. Drawing bits for
// every element of every weight would cost several times the step's update; an
// element's bits are still uniform and new every step, and two elements share
// theirs only when 2^20 positions apart in the same step.
inline constexpr std::int64_t noise_entries = std::int64_t{1} << 20;

SCRIBE_DIM(noise_entry);

inline node_id noise_table(graph& g, const random_key& key) {
    g.bind_if_used(noise_entry(noise_entries));
    return random_bits(key, u32[noise_entry]).id();
}

// The f32 value w stochastically rounded to bf16 (stochastic_round_bf16) with
// the table's entries from `start` on.
inline node_id stochastic_bf16(graph& g, node_id w, node_id table, std::int64_t start) {
    const auto dims = ir::dims_of(g, w);
    const auto n = element_count(dims);
    const auto first = start % noise_entries;
    const auto laps = (first + n + noise_entries - 1) / noise_entries;
    auto noise = table;
    if (laps > 1) {
        noise = ir::broadcast(g, table, {{"laps", laps}, {"noise_entry", noise_entries}}, {1});
        noise = ir::reshape(g, noise, {{"noise_entry", laps * noise_entries}});
    }
    noise = ir::reshape(g, ir::slice(g, noise, {first}, {first + n}), {{"rounded_elements", n}});
    using flat = std::remove_cvref_t<decltype(rounded_elements)>;
    const tensor<dtype_of<f32>, flat> x(g, ir::reshape(g, w, {{"rounded_elements", n}}));
    const tensor<dtype_of<u32>, flat> bits(g, noise);
    return ir::reshape(g, stochastic_round_bf16(x, bits).id(), dims);
}

// The running replica's place in its group of `groups`, u32[] (0 when it is in none).
inline node_id place_in_group(graph& g, const std::vector<std::vector<std::int64_t>>& groups) {
    const auto id = ir::replica_id(g);
    auto place = ir::scalar(g, dtype::u32, 0);
    for (const auto& group : groups)
        for (std::size_t k = 1; k < group.size(); ++k)
            place = ir::select(g, ir::compare(g, comparison::eq, id, ir::scalar(g, dtype::u32, static_cast<double>(group[k]))),
                               ir::scalar(g, dtype::u32, static_cast<double>(k)), place);
    return place;
}

// 1 - beta^t as -expm1(t log beta), f32.
inline node_id bias_correction(graph& g, node_id t, double beta) {
    if (beta == 0) return ir::scalar(g, dtype::f32, 1.0);
    return ir::unary(g, op::neg, ir::unary(g, op::expm1, ir::binary(g, op::mul, t, std::log(beta))));
}

// The replica groups of dp: its own, or one group of all replicas.
inline std::vector<std::vector<std::int64_t>> groups_of(const data_parallel& dp) {
    if (!dp.groups.empty()) return dp.groups;
    std::vector<std::int64_t> all(static_cast<std::size_t>(dp.replicas));
    for (std::size_t r = 0; r < all.size(); ++r) all[r] = static_cast<std::int64_t>(r);
    return {all};
}

// The replicas' mean of the f32 value x.
inline node_id replica_mean(graph& g, node_id x, const data_parallel& dp) {
    return ir::binary(g, op::mul, ir::all_reduce(g, x, reducer::sum, groups_of(dp)), 1.0 / static_cast<double>(dp.replicas));
}

// The replicas' mean of each (f32) gradient, all-reduced in buckets of about
// dp.bucket_bytes filled in the order the gradients are made (their node ids).
inline std::vector<node_id> replica_means(graph& g, std::vector<node_id> grads, const data_parallel& dp) {
    std::vector<std::size_t> order(grads.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    // (std::sort with the index as tie-break: libstdc++'s stable_sort uses the
    // deprecated get_temporary_buffer, an error for clang under -Werror.)
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return grads[a] != grads[b] ? grads[a] < grads[b] : a < b; });
    auto elements = [&](std::size_t i) { return element_count(ir::dims_of(g, grads[i])); };
    for (std::size_t first = 0; first < order.size();) {
        auto last = first + 1;  // the bucket is order[first, last)
        std::int64_t bytes = 4 * elements(order[first]);
        while (last < order.size() && bytes + 4 * elements(order[last]) <= dp.bucket_bytes) bytes += 4 * elements(order[last++]);
        if (last == first + 1) {
            grads[order[first]] = replica_mean(g, grads[order[first]], dp);
        } else {
            std::vector<node_id> flat;
            for (auto k = first; k < last; ++k)
                flat.push_back(ir::reshape(g, grads[order[k]], {{"bucket", elements(order[k])}}));
            const auto mean = replica_mean(g, ir::concatenate(g, std::move(flat), 0), dp);
            std::int64_t offset = 0;
            for (auto k = first; k < last; ++k) {
                const auto n = elements(order[k]);
                const auto part = ir::slice(g, mean, {offset}, {offset + n});
                grads[order[k]] = ir::reshape(g, part, ir::dims_of(g, grads[order[k]]));
                offset += n;
            }
        }
        first = last;
    }
    return grads;
}

}  // namespace detail

// Appends the update of `weights` (parameters of g that `loss` depends on) to
// g and sets g's outputs (update_plan::outputs) and their aliases. `parallel`
// says which weights are shards under tensor parallelism, as for gradients().
inline update_plan append_update(graph& g, node_id loss, const std::vector<node_id>& weights, const update_options& o,
                                 pass p = pass::whole, spmd parallel = {}) {
    using ir::binary;
    detail::check(o);
    if (weights.empty()) throw error("optimizer: no weights to train");
    if ((p == pass::whole) != (o.accumulate == 1))
        throw error("optimizer: a step of " + std::to_string(o.accumulate) + " micro-batches has first, middle and last passes; "
                    "one of a single batch is `whole`");
    if (p == pass::middle && o.accumulate < 3) throw error("optimizer: a step of 2 micro-batches has no middle pass");
    const auto f32 = dtype::f32;
    update_plan plan;
    for (auto w : weights) {
        if (g[w].kind != op::parameter) throw error("optimizer: " + scribe::detail::describe_node(g, w) + " is not a parameter");
        plan.weights.push_back(g[w].label);
    }

    // The gradients of loss / k, in f32, added to what the earlier micro-batches gave.
    const auto scaled = o.accumulate == 1 ? loss : binary(g, op::div, loss, static_cast<double>(o.accumulate));
    auto grads = gradients(g, scaled, weights, parallel);
    // Which weights are shards, and the tensor-parallel groups (read from the
    // graph's collectives before the data-parallel ones join them).
    auto s = parallel;
    std::vector<bool> sharded(weights.size(), false);
    if (!s.varying.empty()) {
        (void)scribe::detail::varying_values(g, g.nodes().size(), s);  // fills in the replica groups
        for (std::size_t i = 0; i < weights.size(); ++i)
            for (auto v : s.varying) sharded[i] = sharded[i] || v == weights[i];
    }
    const bool replicated = o.dp.replicas > 1;
    std::vector<node_id> outputs = {replicated ? detail::replica_mean(g, ir::convert(g, loss, f32), o.dp) : loss};
    for (std::size_t i = 0; i < weights.size(); ++i) {
        grads[i] = ir::convert(g, grads[i], f32);
        if (p == pass::middle || p == pass::last) {
            const auto acc = g.add_parameter(f32, ir::dims_of(g, weights[i]), "accumulated." + plan.weights[i]);
            grads[i] = binary(g, op::add, acc, grads[i]);
        }
    }
    std::vector<std::pair<std::size_t, node_id>> aliases;
    if (p == pass::first || p == pass::middle) {
        for (std::size_t i = 0; i < weights.size(); ++i) {
            plan.accumulators.push_back("accumulated." + plan.weights[i]);
            outputs.push_back(grads[i]);
            if (p == pass::middle) aliases.emplace_back(outputs.size() - 1, *g.find_parameter(plan.accumulators.back()));
        }
        plan.outputs = {"loss"};
        for (const auto& a : plan.accumulators) plan.outputs.push_back(a);
        g.set_outputs(outputs);
        for (auto [out, param] : aliases) g.alias_output(out, param);
        return plan;
    }
    if (p == pass::last)
        for (const auto& w : plan.weights) plan.accumulators.push_back("accumulated." + w);

    if (replicated) grads = detail::replica_means(g, std::move(grads), o.dp);

    // The global norm: sqrt of the sum of each gradient's squared norm (a shard's
    // summed over the ranks first).
    node_id total = -1;
    for (std::size_t i = 0; i < weights.size(); ++i) {
        auto sq = ir::sum_all(g, binary(g, op::mul, grads[i], grads[i]));
        if (sharded[i]) sq = ir::all_reduce(g, sq, reducer::sum, s.replica_groups);
        const auto norm = ir::unary(g, op::sqrt, sq);
        const auto norm_sq = binary(g, op::mul, norm, norm);
        total = total < 0 ? norm_sq : binary(g, op::add, total, norm_sq);
    }
    const auto grad_norm = ir::unary(g, op::sqrt, total);
    outputs.push_back(grad_norm);
    if (o.clip > 0) {
        const auto coef = binary(g, op::div, o.clip, binary(g, op::add, grad_norm, 1e-6));
        const auto clamped = binary(g, op::min, coef, 1.0);
        for (auto& gr : grads) gr = detail::times(g, gr, clamped);
    }

    // The step counter, the rate, and t (from 1).
    const auto step = g.add_parameter(dtype::s32, {}, "optimizer.step");
    plan.state.push_back("optimizer.step");
    const auto next = binary(g, op::add, step, 1.0);
    const auto lr = o.lr.in_graph(g, ir::convert(g, step, f32));
    const auto t = ir::convert(g, next, f32);
    auto decays = [&](node_id w) { return !o.decays || o.decays(g[w].label); };

    std::vector<node_id> updated, state_out = {next};
    std::vector<node_id> state_in = {step};
    auto state = [&](const char* kind, std::size_t i) {
        const auto name = std::string("optimizer.") + kind + "." + plan.weights[i];
        plan.state.push_back(name);
        state_in.push_back(g.add_parameter(f32, ir::dims_of(g, weights[i]), name));
        return state_in.back();
    };
    // Weight i in f32, where the update starts: the weight itself, or its master
    // copy (the weight's value at step 0, when the state is still empty).
    node_id first_step = -1;  // step == 0, made on first use
    auto at_first_step = [&] {
        if (first_step < 0) first_step = ir::compare(g, comparison::eq, step, ir::scalar(g, dtype::s32, 0));
        return first_step;
    };
    auto masters = [&](std::size_t i) { return o.master_weights && g[weights[i]].type != f32; };
    auto start = [&](std::size_t i) {
        const auto w = ir::convert(g, weights[i], f32);
        if (!masters(i)) return w;
        const auto m = state("master", i);
        return ir::select(g, ir::broadcast(g, at_first_step(), ir::dims_of(g, w), {}), w, m);
    };
    // The updated weight i (f32) in its own dtype: rounded to nearest, or
    // stochastically to bf16. Replicated weights take their bits from one table,
    // the same on every rank (so they stay equal); tensor-parallel shards from a
    // second, keyed by the rank's place in its group as well (so shards differ,
    // and the data-parallel copies of a shard agree).
    node_id noise[2] = {-1, -1};      // the step's tables of rounding bits, made on first use
    std::int64_t counted[2] = {0, 0};  // the entries the weights before took
    auto narrowed = [&](std::size_t i, node_id w) {
        const auto t = g[weights[i]].type;
        if (t != dtype::bf16 || o.round == rounding::nearest) return ir::convert(g, w, t);
        const auto k = sharded[i] ? 1 : 0;
        if (noise[k] < 0) {
            auto seed = ir::scalar(g, dtype::u32, static_cast<double>(static_cast<std::uint32_t>(o.seed ^ (o.seed >> 32) ^ 0x5d2a7f13u)));
            if (k) seed = binary(g, op::bitwise_xor, seed, binary(g, op::mul, detail::place_in_group(g, s.replica_groups), 2654435769.0));
            noise[k] = detail::noise_table(g, random_key(tensor<dtype_of<u32>>(g, seed), tensor<dtype_of<u32>>(g, ir::convert(g, step, dtype::u32))));
        }
        const auto r = detail::stochastic_bf16(g, w, noise[k], counted[k]);
        counted[k] = (counted[k] + element_count(ir::dims_of(g, w))) % detail::noise_entries;
        return r;
    };
    if (const auto* a = std::get_if<adamw>(&o.method)) {
        const auto bc1 = detail::bias_correction(g, t, a->beta1), bc2 = detail::bias_correction(g, t, a->beta2);
        const auto step_size = ir::unary(g, op::neg, binary(g, op::div, lr, bc1));
        const auto bc2_sqrt = ir::unary(g, op::sqrt, bc2);
        const auto keep = binary(g, op::sub, 1.0, binary(g, op::mul, lr, a->weight_decay));
        for (std::size_t i = 0; i < weights.size(); ++i) {
            auto w = start(i);
            const auto m = state("exp_avg", i);
            const auto v = state("exp_avg_sq", i);
            const auto gr = grads[i];
            if (a->weight_decay != 0 && decays(weights[i])) w = detail::times(g, w, keep);
            // lerp(m, g, 1 - beta1) as torch computes it on either side of 0.5
            const double wt = 1 - a->beta1;
            const auto diff = binary(g, op::sub, gr, m);
            const auto m2 = wt < 0.5 ? binary(g, op::add, m, binary(g, op::mul, diff, wt))
                                     : binary(g, op::sub, gr, binary(g, op::mul, diff, 1 - wt));
            const auto v2 = binary(g, op::add, binary(g, op::mul, v, a->beta2),
                                   binary(g, op::mul, binary(g, op::mul, gr, 1 - a->beta2), gr));
            const auto denom = binary(g, op::add, binary(g, op::div, ir::unary(g, op::sqrt, v2),
                                                         ir::broadcast(g, bc2_sqrt, ir::dims_of(g, v2), {})),
                                      a->eps);
            w = binary(g, op::add, w, binary(g, op::div, detail::times(g, m2, step_size), denom));
            updated.push_back(narrowed(i, w));
            if (masters(i)) state_out.push_back(w);
            state_out.push_back(m2);
            state_out.push_back(v2);
        }
    } else {
        const auto& sg = std::get<sgd>(o.method);
        const auto minus_lr = ir::unary(g, op::neg, lr);
        const bool first_is_d = sg.momentum != 0 && sg.dampening != 0;  // the first step's buffer is its d
        for (std::size_t i = 0; i < weights.size(); ++i) {
            auto w = start(i);
            auto d = grads[i];
            node_id buffer = -1;
            if (sg.weight_decay != 0 && decays(weights[i])) d = binary(g, op::add, d, binary(g, op::mul, w, sg.weight_decay));
            if (sg.momentum != 0) {
                const auto b = state("momentum_buffer", i);
                auto b2 = binary(g, op::add, binary(g, op::mul, b, sg.momentum), binary(g, op::mul, d, 1 - sg.dampening));
                if (first_is_d) b2 = ir::select(g, ir::broadcast(g, at_first_step(), ir::dims_of(g, d), {}), d, b2);
                d = sg.nesterov ? binary(g, op::add, d, binary(g, op::mul, b2, sg.momentum)) : b2;
                buffer = b2;
            }
            w = binary(g, op::add, w, detail::times(g, d, minus_lr));
            updated.push_back(narrowed(i, w));
            if (masters(i)) state_out.push_back(w);  // in the order of the state's parameters
            if (buffer >= 0) state_out.push_back(buffer);
        }
    }

    plan.outputs = {"loss", "grad_norm"};
    for (std::size_t i = 0; i < weights.size(); ++i) {
        outputs.push_back(updated[i]);
        aliases.emplace_back(outputs.size() - 1, weights[i]);
        plan.outputs.push_back(plan.weights[i]);
    }
    for (std::size_t i = 0; i < state_out.size(); ++i) {
        outputs.push_back(state_out[i]);
        aliases.emplace_back(outputs.size() - 1, state_in[i]);
        plan.outputs.push_back(plan.state[i]);
    }
    g.set_outputs(outputs);
    for (auto [out, param] : aliases) g.alias_output(out, param);
    return plan;
}

}  // namespace scribe::train
