// scribe/train/causal_lm.hpp — the causal language-modelling loss of a decoder
// family, from its one forward definition (models/<family>.hpp).
//
//     graph g("train");
//     auto loss = train::causal_lm_loss<models::gpt2_family, f32>(g, config, {.batch = 4, .seq = 128});
//     auto grads = gradients(g, loss.id(), weight ids...);
//
// The graph's inputs are the family's weights (as they are named in its
// checkpoints), ids s32[batch, seq] (each row a sequence, right-padded to seq
// with any id) and lengths s32[batch] (each row's real tokens). The loss is
// Hugging Face's for labels = ids with the padding ignored: the mean over every
// real position t < length - 1 of the cross-entropy of token t + 1 under the
// logits at t, in f32 (nn::cross_entropy). The family's prefill graph runs over
// the whole sequences without a KV cache; padding needs no attention mask of its
// own, as the causal mask keeps a real token from seeing the padding after it.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "../models/blocks.hpp"
#include "../nn/losses.hpp"

namespace scribe::train {

struct batch_shape {
    std::int64_t batch = 1;
    std::int64_t seq = 2;  // positions per row, padding included (at least 2: one token predicts the next)
    std::int64_t tp = 1;   // tensor-parallel degree: the graph is one rank's
    std::int64_t dp = 1;   // copies of the tensor-parallel group: a dp x tp mesh (parallel::mesh)
    // The config's dropout, from the key given as dropout.key0/key1 (u32
    // scalars; models::graph_shape::dropout). Off: the loss is deterministic.
    bool dropout = false;
};

template <class Family, auto Dtype>
tensor_of<f32[]> causal_lm_loss(graph& g, const typename Family::config& c, const batch_shape& b) {
    using namespace nn;
    if (b.seq < 2) throw error("causal_lm_loss: seq is " + std::to_string(b.seq) + "; a row needs at least 2 positions");
    Family::template build<Dtype>(g, c, {.batch = b.batch, .seq = b.seq, .capacity = b.seq, .decode = false,
                                        .last_only = false, .tp = b.tp, .dp = b.dp, .kv_cache = false, .dropout = b.dropout});
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const tensor_of<T{}[batch, seq, vocab]> logits(g, g.outputs().at(0));
    const tensor_of<s32[batch, seq]> ids(g, *g.find_parameter("ids"));
    const tensor_of<s32[batch]> lengths(g, *g.find_parameter("lengths"));
    const auto n = b.seq;
    // Every position's logits against the token after it; the last position
    // predicts nothing (its label's position is n, past every length). The
    // logits are not sliced, so their gradient is not padded back either.
    auto next = pad<seq>(ids, 0.0, -1, 1);                                        // the token each position predicts
    auto at = pad<seq>(g.iota(s32[batch, seq], seq), static_cast<double>(n), -1, 1);  // its position
    auto real = lt(at, broadcast_to(lengths, at));                               // a real token, not padding
    auto loss = cross_entropy<vocab>(logits, next, real);
    static_assert(std::is_same_v<decltype(loss), tensor_of<f32[]>>, "the loss is computed in f32");
    g.outputs(loss);
    return loss;
}

// Hugging Face Trainer's weight-decay groups for a family's weights: a weight
// decays when its checkpoint stores it with rank 2 or more (the matrices and
// embeddings; not the biases and norm scales). For update_options::decays.
inline std::function<bool(const std::string&)> decays_matrices(const std::vector<models::weight_spec>& specs) {
    std::set<std::string, std::less<>> names;
    for (const auto& s : specs)
        if (s.stored.size() >= 2) names.insert(s.name);
    return [names = std::move(names)](const std::string& n) { return names.contains(n); };
}

}  // namespace scribe::train
