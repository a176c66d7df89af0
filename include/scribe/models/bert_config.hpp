// scribe/models/bert_config.hpp — the config.json of an encoder (BERT, RoBERTa,
// DistilBERT), checked, and what it implies, without the DSL; models/bert.hpp
// declares the weights and builds the graph.
//
// The three share one architecture (post-LN layers of bidirectional attention and
// an MLP over word + position (+ token-type) embeddings) and differ in names and
// details: RoBERTa's positions start after its padding id and its classifier is
// dense-tanh-out_proj over the first token; DistilBERT has no token types, other
// weight names and a dense-ReLU-classifier head; BERT's head is its pooler (tanh
// over the first token) and a classifier.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common.hpp"

namespace scribe::models::bert {

using models::weight_spec;

// What an encoder's config.json says, checked.
struct config : decoder_config {
    enum class kind { bert, roberta, distilbert };
    enum class head { none, classifier };
    // What the classifier's outputs mean (problem_type): a softmax over the labels,
    // one sigmoid per label, or the raw values (regression).
    enum class problem { single_label, multi_label, regression };

    kind family = kind::bert;
    std::string model_type = "bert";
    std::int64_t hidden = 0, n_head = 0, intermediate = 0;
    std::int64_t type_vocab_size = 0;  // rows of the token-type table; 0: none (DistilBERT)
    std::int64_t position_rows = 0;    // rows of the position table (max_position_embeddings)
    std::int64_t position_offset = 0;  // RoBERTa: positions start at pad_token_id + 1
    std::int32_t pad_token_id = 0;
    double layer_norm_eps = 1e-12;
    std::string activation = "gelu";
    head classifier = head::none;
    problem problem_type = problem::single_label;
    std::vector<std::string> labels;  // id2label, by id (a classifier's outputs)
    std::string architecture;         // architectures[0], or empty

    std::int64_t head_dim() const { return hidden / n_head; }
    std::int64_t num_labels() const { return static_cast<std::int64_t>(labels.size()); }

    static config parse(const nlohmann::json& j, const std::string& source) {
        const config_reader r(j, source);
        r.model_type({"bert", "roberta", "distilbert"}, "encoder");
        config c;
        c.model_type = r.has("model_type") ? j["model_type"].get<std::string>() : "bert";
        c.family = c.model_type == "roberta" ? kind::roberta : c.model_type == "distilbert" ? kind::distilbert : kind::bert;
        c.vocab_size = r.integer("vocab_size");
        c.position_rows = r.integer("max_position_embeddings");
        c.initializer_range = r.positive("initializer_range", c.initializer_range);
        if (c.family == kind::distilbert) {
            c.hidden = r.integer("dim");
            c.n_head = r.integer("n_heads");
            c.n_layer = r.integer("n_layers");
            c.intermediate = r.integer("hidden_dim");
            c.activation = r.choice("activation", "gelu", {"gelu", "relu", "gelu_new", "gelu_pytorch_tanh", "silu", "swish"});
            r.divides("dim", c.hidden, "n_heads", c.n_head);
            // (sinusoidal_pos_embds: the table is in the checkpoint either way.)
        } else {
            c.hidden = r.integer("hidden_size");
            c.n_head = r.integer("num_attention_heads");
            c.n_layer = r.integer("num_hidden_layers");
            c.intermediate = r.integer("intermediate_size");
            c.type_vocab_size = r.integer("type_vocab_size", 2);
            c.layer_norm_eps = r.positive("layer_norm_eps", c.layer_norm_eps);
            c.activation = r.choice("hidden_act", "gelu", {"gelu", "relu", "gelu_new", "gelu_pytorch_tanh", "silu", "swish"});
            r.divides("hidden_size", c.hidden, "num_attention_heads", c.n_head);
            if (r.has("position_embedding_type") && j["position_embedding_type"] != "absolute")
                r.fail("position_embedding_type " + io::shown(j["position_embedding_type"]) +
                       " is not supported (only \"absolute\": learned position embeddings)");
            r.only("is_decoder", false, "an encoder: attention is bidirectional");
            r.only("add_cross_attention", false, "an encoder without cross-attention");
        }
        const auto pad = r.padding_row(c.vocab_size);
        c.pad_token_id = pad.value_or(c.family == kind::roberta ? 1 : 0);
        c.padding_idx = c.pad_token_id;
        if (c.family == kind::roberta) {
            // RoBERTa numbers positions from pad_token_id + 1 (create_position_ids_from_input_ids).
            c.position_offset = c.pad_token_id + 1;
            if (c.position_rows <= c.position_offset)
                r.fail("max_position_embeddings " + std::to_string(c.position_rows) + " leaves no positions after pad_token_id " +
                       std::to_string(c.pad_token_id) + " (RoBERTa's positions start at pad_token_id + 1)");
        }
        c.n_positions = c.position_rows - c.position_offset;
        read_head(r, j, c);
        return c;
    }

    static config load(const std::filesystem::path& file) { return load_config<config>(file); }

private:
    // architectures[0] picks the head: *ForSequenceClassification has a classifier
    // (id2label or num_labels says how many outputs); *Model, *ForMaskedLM and
    // *ForPreTraining are read as the encoder alone (their heads' tensors are
    // skipped); heads Scribe does not run are refused by name.
    static void read_head(const config_reader& r, const nlohmann::json& j, config& c) {
        if (r.has("architectures")) {
            const auto& a = j["architectures"];
            if (!a.is_array() || a.empty() || !a[0].is_string())
                r.fail("architectures must be a list of class names, got " + io::shown(a));
            c.architecture = a[0].get<std::string>();
        }
        auto ends = [&](const std::string& s) {
            return c.architecture.size() >= s.size() && c.architecture.compare(c.architecture.size() - s.size(), s.size(), s) == 0;
        };
        if (ends("ForSequenceClassification")) {
            c.classifier = head::classifier;
        } else if (!c.architecture.empty() && !ends("Model") && !ends("ForMaskedLM") && !ends("ForPreTraining")) {
            r.fail("architecture " + io::printable(c.architecture) +
                   " is not supported (Scribe runs *ForSequenceClassification, and *Model, *ForMaskedLM or *ForPreTraining "
                   "as an encoder for embeddings)");
        }
        if (c.classifier == head::none) return;
        std::int64_t n = 0;
        if (r.has("id2label")) {
            const auto& m = j["id2label"];
            if (!m.is_object() || m.empty()) r.fail("id2label must be an object of label names by id, got " + io::shown(m));
            n = static_cast<std::int64_t>(m.size());
            if (n > 100000) r.fail("id2label has " + std::to_string(n) + " labels; at most 100000");
            c.labels.assign(static_cast<std::size_t>(n), {});
            for (const auto& [key, value] : m.items()) {
                std::size_t used = 0;
                long long id = -1;
                try {
                    id = std::stoll(key, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used != key.size() || id < 0 || id >= n)
                    r.fail("id2label key \"" + io::printable(key) + "\" must be a label id from 0 to " + std::to_string(n - 1));
                if (!value.is_string()) r.fail("id2label[\"" + key + "\"] must be a string, got " + io::shown(value));
                c.labels[static_cast<std::size_t>(id)] = value.get<std::string>();
            }
        }
        if (r.has("num_labels")) {
            const auto k = r.integer("num_labels");
            if (n && k != n)
                r.fail("num_labels " + std::to_string(k) + " disagrees with id2label's " + std::to_string(n) + " labels");
            n = k;
        }
        if (n == 0) n = 2;  // transformers' default
        for (auto i = static_cast<std::int64_t>(c.labels.size()); i < n; ++i) c.labels.push_back("LABEL_" + std::to_string(i));
        const auto p = r.choice("problem_type", n == 1 ? "regression" : "single_label_classification",
                                {"single_label_classification", "multi_label_classification", "regression"});
        c.problem_type = p == "regression" ? problem::regression : p == "multi_label_classification" ? problem::multi_label
                                                                                                   : problem::single_label;
    }
};

// Refuses a tensor-parallel degree that does not divide the heads and the MLP's
// width, naming both.
inline void check_tp(const config& c, std::int64_t degree) {
    const parallel::mesh m{.degree = degree};
    (void)m.shard(c.family == config::kind::distilbert ? "n_heads" : "num_attention_heads", c.n_head);
    (void)m.shard(c.family == config::kind::distilbert ? "hidden_dim" : "intermediate_size", c.intermediate);
}

// Tensors an encoder checkpoint may hold that the model does not read: the
// position-id and token-type buffers older versions saved, the pooler of a model
// without a classifier (when the model reads it, it is a weight and this is not
// asked), and the pre-training heads (masked LM, next sentence).
inline bool ignored_tensor(const std::string& name) {
    auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
    auto starts = [&](const std::string& s) { return name.compare(0, s.size(), s) == 0; };
    if (ends("embeddings.position_ids") || ends("embeddings.token_type_ids")) return true;
    for (const char* p : {"", "bert.", "roberta."})
        if (starts(std::string(p) + "pooler.")) return true;
    return starts("cls.") || starts("lm_head.") || starts("vocab_transform.") || starts("vocab_layer_norm.") ||
           starts("vocab_projector.");
}

}  // namespace scribe::models::bert
