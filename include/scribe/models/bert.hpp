// scribe/models/bert.hpp — the encoders BERT, RoBERTa and DistilBERT: one
// declaration of their weights (under each family's Hugging Face names) and one
// forward definition, on the shared blocks (nn/encoder.hpp, parallel/layers.hpp).
// No backend here.
//
// The graph, for a batch of right-padded inputs of `seq` positions (a bucket):
//
//   ids s32[batch, seq], token_types s32[batch, seq] (not for DistilBERT),
//   lengths s32[batch]
//     -> mean f32[batch, hidden]   the last hidden state averaged over real tokens
//                                  (graph_shape::mean; not in a graph without it)
//        first f32[batch, hidden]  the last hidden state of the first token
//        logits T[batch, labels]   (a *ForSequenceClassification checkpoint)
//
// Without the mean, nothing reads the last layer's other rows: its query, the
// attention over it, the output projection, MLP and norms run on the first token
// only (a classifier's graph; llama.cpp selects output rows so). Its keys and
// values are still every token's.
//
// Under tensor parallelism (graph_shape::tp) the query, key and value projections
// and the MLP's first matrix are column-parallel (split by heads, by ffn), the
// attention output and the MLP's second matrix row-parallel, as the NeuronX
// Distributed tutorial makes BERT; embeddings, norms and the head are replicated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../nn/encoder.hpp"
#include "../parallel/layers.hpp"
#include "bert_config.hpp"
#include "declare.hpp"

namespace scribe::models::bert {

// The shapes of one encoder graph.
struct graph_shape {
    std::int64_t batch = 1;
    std::int64_t seq = 1;  // the bucket: positions every input is padded to
    std::int64_t tp = 1;   // tensor-parallel degree: the graph is one rank's
    std::int64_t dp = 1;
    weight_format weights = weight_format::plain;
    bool mean = true;      // output the mean-pooled last hidden state (it needs every row of the last layer)
};

// The Hugging Face names of one family's weights.
struct names {
    std::string embeddings, layer, q, k, v, o, attn_norm, ffn_in, ffn_out, out_norm;

    static names of(config::kind k) {
        if (k == config::kind::distilbert)
            return {"embeddings.", "transformer.layer.", "attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                    "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"};
        return {"embeddings.", "encoder.layer.", "attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"};
    }
};

// Declares every weight of an encoder (models/declare.hpp) for one rank of mesh m.
template <DtypeTag T>
auto declare(declaration d, const config& c, const parallel::mesh& m) {
    using namespace nn;
    d.graph().bind(hidden(c.hidden), heads(m.shard("the attention heads", c.n_head)), head_dim(c.head_dim()),
                   ffn(m.shard("the MLP width", c.intermediate)), vocab(c.vocab_size), positions(c.position_rows));
    if (c.type_vocab_size) d.graph().bind(types(c.type_vocab_size));
    if (c.classifier == config::head::classifier) d.graph().bind(pooled(c.hidden), labels(c.num_labels()));
    const T t{};
    const auto n = names::of(c.family);
    struct layer {
        tensor_of<T{}[heads, head_dim, hidden]> wq, wk, wv;
        tensor_of<T{}[heads, head_dim]> bq, bk, bv;
        tensor_of<T{}[hidden, heads, head_dim]> wo;
        tensor_of<T{}[hidden]> bo, ln1_g, ln1_b;
        tensor_of<T{}[ffn, hidden]> w_in;
        tensor_of<T{}[ffn]> b_in;
        tensor_of<T{}[hidden, ffn]> w_out;
        tensor_of<T{}[hidden]> b_out, ln2_g, ln2_b;
    };
    struct classifier {
        tensor_of<T{}[pooled, hidden]> w_dense;  // BERT's pooler, RoBERTa's classifier.dense, DistilBERT's pre_classifier
        tensor_of<T{}[pooled]> b_dense;
        tensor_of<T{}[labels, pooled]> w_out;
        tensor_of<T{}[labels]> b_out;
    };
    struct weights {
        tensor_of<T{}[vocab, hidden]> word;
        tensor_of<T{}[positions, hidden]> position;
        std::optional<tensor_of<T{}[types, hidden]>> type;
        tensor_of<T{}[hidden]> ln_g, ln_b;
        std::vector<layer> layers;
        std::optional<classifier> head;
    };
    const auto e = n.embeddings;
    auto word = d(t[vocab, hidden], e + "word_embeddings.weight", {.init = {.zero_row = c.padding_idx}});
    auto position = d(t[positions, hidden], e + "position_embeddings.weight");
    decltype(weights::type) type;
    if (c.type_vocab_size) type = d(t[types, hidden], e + "token_type_embeddings.weight");
    auto ln_g = d(t[hidden], e + "LayerNorm.weight", {.init = ones});
    auto ln_b = d(t[hidden], e + "LayerNorm.bias", {.init = zeros});
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = n.layer + std::to_string(l) + ".";
        auto proj = [&](const std::string& what) {
            return std::pair{d(t[heads, head_dim, hidden], p + what + ".weight", {.split = "heads", .stored = {2, 1}}),
                             d(t[heads, head_dim], p + what + ".bias", {.split = "heads", .stored = {2}, .init = zeros})};
        };
        auto [wq, bq] = proj(n.q);
        auto [wk, bk] = proj(n.k);
        auto [wv, bv] = proj(n.v);
        auto wo = d(t[hidden, heads, head_dim], p + n.o + ".weight", {.split = "heads", .stored = {1, 2}});
        auto bo = d(t[hidden], p + n.o + ".bias", {.init = zeros});
        auto ln1_g = d(t[hidden], p + n.attn_norm + ".weight", {.init = ones});
        auto ln1_b = d(t[hidden], p + n.attn_norm + ".bias", {.init = zeros});
        auto w_in = d(t[ffn, hidden], p + n.ffn_in + ".weight", {.split = "ffn"});
        auto b_in = d(t[ffn], p + n.ffn_in + ".bias", {.split = "ffn", .init = zeros});
        auto w_out = d(t[hidden, ffn], p + n.ffn_out + ".weight", {.split = "ffn"});
        auto b_out = d(t[hidden], p + n.ffn_out + ".bias", {.init = zeros});
        auto ln2_g = d(t[hidden], p + n.out_norm + ".weight", {.init = ones});
        auto ln2_b = d(t[hidden], p + n.out_norm + ".bias", {.init = zeros});
        layers.push_back({wq, wk, wv, bq, bk, bv, wo, bo, ln1_g, ln1_b, w_in, b_in, w_out, b_out, ln2_g, ln2_b});
    }
    std::optional<classifier> head;
    if (c.classifier == config::head::classifier) {
        const char* dense = c.family == config::kind::bert ? "pooler.dense" : c.family == config::kind::roberta ? "classifier.dense"
                                                                                                                 : "pre_classifier";
        const char* out = c.family == config::kind::roberta ? "classifier.out_proj" : "classifier";
        head = classifier{d(t[pooled, hidden], std::string(dense) + ".weight"), d(t[pooled], std::string(dense) + ".bias", {.init = zeros}),
                          d(t[labels, pooled], std::string(out) + ".weight"), d(t[labels], std::string(out) + ".bias", {.init = zeros})};
    }
    return weights{word, position, type, ln_g, ln_b, std::move(layers), head};
}

// Every weight, in the order the graph creates its parameters, and how each is
// split over `degree` ranks.
inline std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) {
    return list_weights(degree, c, declare<dtype_of<f32>>);
}

// Builds the encoder graph (above) in dtype Dtype on g.
template <auto Dtype>
void build(graph& g, const config& c, const graph_shape& s) {
    using namespace nn;
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const parallel::mesh m{.degree = s.tp, .replicas = s.dp};
    const auto w = declare<T>(declaration(g, s.weights), c, m);
    g.bind(batch(s.batch), seq(s.seq), keys(s.seq));
    auto ids = g.parameter(s32[batch, seq], "ids");
    std::optional<tensor_of<s32[batch, seq]>> token_types;
    if (w.type) token_types = g.parameter(s32[batch, seq], "token_types");
    auto lengths = g.parameter(s32[batch], "lengths");

    // Positions 0.. of each row; RoBERTa's start after the padding id, and its
    // padding tokens take the padding id's row (create_position_ids_from_input_ids).
    auto at = g.iota(s32[batch, seq], seq);
    auto positions_of = [&] {
        if (!c.position_offset) return at;
        auto shifted = at + broadcast_to(g.constant(s32, static_cast<double>(c.position_offset)), at);
        return tensor_of<s32[batch, seq]>(
            select(real_tokens(g, lengths), shifted, broadcast_to(g.constant(s32, static_cast<double>(c.pad_token_id)), at)));
    };
    auto x = embedding(w.word, ids) + position_embedding(w.position, positions_of());
    if (w.type) x = x + type_embedding(*w.type, *token_types);
    x = layer_norm<hidden>(x, w.ln_g, w.ln_b, c.layer_norm_eps);

    const auto mask = padding_mask(g, lengths);
    // One layer from x [batch, seq, hidden]; rows() picks the queries, the rows
    // that go on past attention: all of them, or in a graph without the mean the
    // last layer's first token alone (its keys and values are still every token's).
    auto layer = [&](const auto& x, const auto& l, auto rows) {
        auto q = parallel::column_linear<hidden>(rows(x), l.wq, l.bq, m);  // [batch, (seq,) heads, head_dim]
        auto k = parallel::column_linear<hidden>(x, l.wk, l.bk, m);
        auto v = parallel::column_linear<hidden>(x, l.wv, l.bv, m);
        auto ctx = attention(q, rename<seq, keys>(k), rename<seq, keys>(v), mask);  // [batch, heads, (seq,) head_dim]
        auto r = add_norm(rows(x), parallel::row_linear<heads, head_dim>(ctx, l.wo, l.bo, m), l.ln1_g, l.ln1_b, c.layer_norm_eps);
        auto y = parallel::mlp(r, l.w_in, l.b_in, l.w_out, l.b_out, [&](const auto& u) { return activation(u, c.activation); }, m);
        return add_norm(r, y, l.ln2_g, l.ln2_b, c.layer_norm_eps);
    };
    using X = decltype(x);
    const std::size_t picked = s.mean || w.layers.empty() ? 0 : 1;
    for (std::size_t i = 0; i + picked < w.layers.size(); ++i) x = X(layer(x, w.layers[i], [](const auto& t) { return t; }));
    // The outputs from the first token's last hidden state [batch, hidden].
    auto finish = [&](std::vector<node_id> outs, const auto& first) {
        outs.push_back(convert<f32>(first).id());
        if (w.head) {
            const auto& h = *w.head;
            auto pooled_vector = c.family == config::kind::distilbert
                                     ? dense_over_pooled(first, h.w_dense, h.b_dense, [](const auto& u) { return relu(u); })
                                     : dense_over_pooled(first, h.w_dense, h.b_dense, [](const auto& u) { return tanh(u); });
            outs.push_back(classify(pooled_vector, h.w_out, h.b_out).id());
        }
        g.set_outputs(outs);
    };
    if (picked) finish({}, layer(x, w.layers.back(), [](const auto& t) { return first_token(t); }));
    else finish({mean_pool(x, lengths).id()}, first_token(x));
}

}  // namespace scribe::models::bert

namespace scribe::models {

// The encoder families for runtime::encoder: one architecture, three sets of names.
template <bert::config::kind Kind>
struct encoder_family {
    static constexpr const char* name = Kind == bert::config::kind::bert      ? "BERT"
                                        : Kind == bert::config::kind::roberta ? "RoBERTa"
                                                                              : "DistilBERT";
    using config = bert::config;
    using graph_shape = bert::graph_shape;
    // *ForSequenceClassification's encoder names; *Model's have none.
    static constexpr const char* prefix = Kind == bert::config::kind::bert      ? "bert."
                                          : Kind == bert::config::kind::roberta ? "roberta."
                                                                                : "distilbert.";
    static std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) { return bert::weights(c, degree); }
    static bool ignored_tensor(const std::string& n) { return bert::ignored_tensor(n); }
    static void check_tp(const config& c, std::int64_t degree) { bert::check_tp(c, degree); }
    static std::vector<shape> cache_shapes(const config&, std::int64_t, std::int64_t, std::int64_t) { return {}; }
    static std::string summary(const config& c) {
        std::string s = std::string(name) + " encoder, " + std::to_string(c.n_layer) + " layers, hidden " + std::to_string(c.hidden) +
                        ", " + std::to_string(c.n_head) + " heads of " + std::to_string(c.head_dim()) + ", ffn " +
                        std::to_string(c.intermediate) + ", vocab " + std::to_string(c.vocab_size) + ", " +
                        std::to_string(c.n_positions) + " positions";
        if (c.type_vocab_size) s += ", " + std::to_string(c.type_vocab_size) + " token types";
        if (c.classifier == config::head::classifier) s += ", classifier of " + std::to_string(c.num_labels()) + " labels";
        return s;
    }
    static std::string tp_rule(const config& c) {
        return "they divide the " + std::to_string(c.n_head) + " attention heads and the MLP width " + std::to_string(c.intermediate);
    }
    template <auto Dtype>
    static void build(graph& g, const config& c, const graph_shape& s) {
        bert::build<Dtype>(g, c, s);
    }
};

using bert_family = encoder_family<bert::config::kind::bert>;
using roberta_family = encoder_family<bert::config::kind::roberta>;
using distilbert_family = encoder_family<bert::config::kind::distilbert>;

// The encoder types, as config.json names them.
inline constexpr const char* encoder_types = "bert, roberta, distilbert";

// Calls f.template operator()<Family>() with the encoder family of model_type `type`.
template <class F>
decltype(auto) with_encoder_type(const std::string& type, const std::string& source, F&& f) {
    if (type == "bert") return f.template operator()<bert_family>();
    if (type == "roberta") return f.template operator()<roberta_family>();
    if (type == "distilbert") return f.template operator()<distilbert_family>();
    throw error(source + ": model_type \"" + io::printable(type) + "\" is not an encoder Scribe runs (" + encoder_types + ")");
}

}  // namespace scribe::models
