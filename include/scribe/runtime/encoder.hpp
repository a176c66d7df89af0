// scribe/runtime/encoder.hpp — an encoder (BERT, RoBERTa, DistilBERT) loaded from
// a Hugging Face folder and run on the CPU backend: sentence classification
// (logits and label probabilities) and sentence embeddings (mean pooling, or the
// first token), for batches of inputs of any lengths.
//
//     runtime::encoder<models::bert_family> m("path/to/bert", {.tp = 2});
//     auto out = m.encode({{.ids = ids, .token_types = types}});
//     // out[0].logits, out[0].scores, out[0].mean, out[0].first
//     auto labels = m.encode(inputs, {.mean = false});  // no mean: the last layer on [CLS] only
//
// Automatic buckets (load_options::buckets; default 128 and 512 below the
// model's positions, and the positions themselves): each input is right-padded
// to the smallest bucket that holds it, inputs of one bucket run together, and
// each (bucket, batch) graph is built on first use. An input longer than the
// model's positions is refused, naming it; truncation is the tokenizer's
// (it knows where a pair's halves are).
//
// Loading, tensor-parallel ranks (threads or MPI) and weight shards are
// runtime/loaded_model.hpp's, shared with the decoder.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "loaded_model.hpp"

namespace scribe::runtime {

// One input: token ids (with the model's special tokens already in place, as a
// tokenizer's template puts them) and their token types (segment ids; empty: all 0).
struct encoder_input {
    std::vector<std::int32_t> ids;
    std::vector<std::int32_t> token_types{};
};

// What the encoder makes of one input.
struct encoding {
    std::vector<float> mean;    // [hidden]: the last hidden state averaged over the input's tokens
    std::vector<float> first;   // [hidden]: the last hidden state of the first token ([CLS], <s>)
    std::vector<float> logits;  // [labels] (a classifier's checkpoint; else empty)
    // The logits as the config's problem_type reads them: a softmax over the
    // labels, a sigmoid per label (multi-label), or the logits (regression).
    std::vector<double> scores;
    std::int64_t bucket = 0;    // the positions it was padded to
};

// What encode() computes.
struct encode_options {
    // The mean-pooled embedding, which needs every row of the last layer. Without
    // it (classification, [CLS] embeddings) the last layer's query, attention,
    // output projection, MLP and norms run on each input's first token only (its
    // keys and values on every token), and `mean` stays empty.
    bool mean = true;
};

template <class Family>
class encoder : public loaded_model<Family> {
    using base = loaded_model<Family>;
    using typename base::step_graph;
    using base::opt_;
    using base::config_;
    using base::ranks_;

public:
    using config = typename Family::config;

    encoder(const std::filesystem::path& dir, load_options opt = {}) : base(dir, std::move(opt), "encoder") {
        std::vector<std::int64_t> defaults;
        for (std::int64_t b : {128, 512})
            if (b < config_.n_positions) defaults.push_back(b);
        defaults.push_back(config_.n_positions);
        this->set_buckets(defaults);
    }

    bool has_classifier() const { return config_.classifier == config::head::classifier; }
    const std::vector<std::string>& labels() const { return config_.labels; }
    std::int64_t hidden_size() const { return config_.hidden; }
    // Seconds spent running graphs (building them is not counted), and the real
    // and padded tokens they ran, since the encoder was made.
    double run_seconds() const { return seconds_; }
    std::int64_t tokens_run() const { return tokens_; }
    std::int64_t padded_tokens_run() const { return padded_; }

    // Refuses inputs encode() would refuse, before anything runs.
    void check_inputs(const std::vector<encoder_input>& inputs) const {
        if (inputs.empty()) throw error("encode: no inputs");
        if (static_cast<std::int64_t>(inputs.size()) > max_batch)
            throw error("encode: " + std::to_string(inputs.size()) + " inputs in one call; at most " + std::to_string(max_batch));
        const auto types = std::max<std::int64_t>(config_.type_vocab_size, 1);
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            const auto& in = inputs[i];
            const auto n = static_cast<std::int64_t>(in.ids.size());
            const auto which = "encode: input " + std::to_string(i);
            if (n == 0) throw error(which + " is empty; give at least one token");
            if (n > config_.n_positions)
                throw error(which + " has " + std::to_string(n) + " tokens but the model reads at most " +
                            std::to_string(config_.n_positions) + " (max_position_embeddings); truncate it (scribe classify --truncate, "
                            "or the tokenizer's truncation) or shorten it");
            for (const auto t : in.ids)
                if (t < 0 || t >= config_.vocab_size)
                    throw error(which + " has token " + std::to_string(t) + ", outside the vocabulary of " +
                                std::to_string(config_.vocab_size));
            if (!in.token_types.empty() && in.token_types.size() != in.ids.size())
                throw error(which + " has " + std::to_string(in.token_types.size()) + " token types for " + std::to_string(n) +
                            " tokens; give one per token (or none)");
            for (const auto t : in.token_types)
                if (t < 0 || t >= types)
                    throw error(which + " has token type " + std::to_string(t) + " but the model has " +
                                (config_.type_vocab_size ? std::to_string(types) + " (type_vocab_size)" : std::string("no token types, only 0")));
        }
        for (const auto& in : inputs) (void)bucket_for(static_cast<std::int64_t>(in.ids.size()));
    }

    // Encodes inputs of any lengths: grouped by bucket, each group one run.
    std::vector<encoding> encode(const std::vector<encoder_input>& inputs, const encode_options& o = {}) {
        check_inputs(inputs);
        std::map<std::int64_t, std::vector<std::size_t>> by_bucket;
        for (std::size_t i = 0; i < inputs.size(); ++i) by_bucket[bucket_for(static_cast<std::int64_t>(inputs[i].ids.size()))].push_back(i);
        std::vector<encoding> out(inputs.size());
        for (const auto& [bucket, rows] : by_bucket) {
            const auto batch = static_cast<std::int64_t>(rows.size());
            auto& s = graph_for(bucket, batch, o.mean);
            const auto t0 = std::chrono::steady_clock::now();
            auto outs = this->run(s, [&](std::size_t) { return step_inputs(inputs, rows, bucket); });
            seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            padded_ += batch * bucket;
            const std::size_t at = o.mean ? 1 : 0;  // the outputs after the mean
            const auto mean = o.mean ? base::as_floats(outs[0][0]) : std::vector<float>{}, first = base::as_floats(outs[0][at]);
            const auto H = static_cast<std::size_t>(config_.hidden);
            std::vector<float> logits;
            if (has_classifier()) logits = base::as_floats(outs[0][at + 1]);
            const auto L = static_cast<std::size_t>(config_.num_labels());
            for (std::size_t r = 0; r < rows.size(); ++r) {
                auto& e = out[rows[r]];
                tokens_ += static_cast<std::int64_t>(inputs[rows[r]].ids.size());
                e.bucket = bucket;
                if (o.mean)
                    e.mean.assign(mean.begin() + static_cast<std::ptrdiff_t>(r * H), mean.begin() + static_cast<std::ptrdiff_t>((r + 1) * H));
                e.first.assign(first.begin() + static_cast<std::ptrdiff_t>(r * H), first.begin() + static_cast<std::ptrdiff_t>((r + 1) * H));
                if (!has_classifier()) continue;
                e.logits.assign(logits.begin() + static_cast<std::ptrdiff_t>(r * L), logits.begin() + static_cast<std::ptrdiff_t>((r + 1) * L));
                e.scores = scores(e.logits, rows[r]);
            }
        }
        return out;
    }

    // The smallest bucket that holds `tokens`, or a clear error.
    std::int64_t bucket_for(std::int64_t tokens) const {
        for (auto b : opt_.buckets)
            if (b >= tokens) return b;
        std::string list;
        for (auto b : opt_.buckets) list += (list.empty() ? "" : ", ") + std::to_string(b);
        throw error("encode: an input of " + std::to_string(tokens) + " tokens is longer than the largest bucket " +
                    std::to_string(opt_.buckets.back()) + " (buckets: " + list + "); add a larger bucket or truncate the input");
    }

    // The graph of one bucket and batch, built on first use (export uses it too,
    // with every output).
    const graph& encoder_graph(std::int64_t bucket, std::int64_t batch, const encode_options& o = {}) {
        return *graph_for(bucket, batch, o.mean).g;
    }

private:
    step_graph& graph_for(std::int64_t bucket, std::int64_t batch, bool mean) {
        const auto key = std::make_tuple(bucket, batch, mean);
        auto it = graphs_.find(key);
        if (it == graphs_.end()) {
            const auto shape =
                typename Family::graph_shape{.batch = batch, .seq = bucket, .tp = opt_.tp, .weights = opt_.weights, .mean = mean};
            it = graphs_.emplace(key, this->make("encoder_" + std::to_string(bucket), [&]<auto D>(graph& g) {
                Family::template build<D>(g, config_, shape);
            })).first;
        }
        return it->second;
    }

    cpu::named_arrays step_inputs(const std::vector<encoder_input>& inputs, const std::vector<std::size_t>& rows, std::int64_t bucket) const {
        const auto batch = static_cast<std::int64_t>(rows.size());
        auto ids = cpu::array(dtype::s32, {{"batch", batch}, {"seq", bucket}});
        auto types = cpu::array(dtype::s32, {{"batch", batch}, {"seq", bucket}});
        auto lengths = cpu::array(dtype::s32, {{"batch", batch}});
        auto* pid = reinterpret_cast<std::int32_t*>(ids.mutable_data());
        auto* ptype = reinterpret_cast<std::int32_t*>(types.mutable_data());
        auto* plen = reinterpret_cast<std::int32_t*>(lengths.mutable_data());
        for (std::size_t r = 0; r < rows.size(); ++r) {
            const auto& in = inputs[rows[r]];
            auto* row = pid + static_cast<std::int64_t>(r) * bucket;
            std::fill(row, row + bucket, config_.pad_token_id);
            std::copy(in.ids.begin(), in.ids.end(), row);
            auto* trow = ptype + static_cast<std::int64_t>(r) * bucket;
            std::fill(trow, trow + bucket, 0);
            std::copy(in.token_types.begin(), in.token_types.end(), trow);
            plen[r] = static_cast<std::int32_t>(in.ids.size());
        }
        cpu::named_arrays named;
        named.emplace_back("ids", std::move(ids));
        if (config_.type_vocab_size) named.emplace_back("token_types", std::move(types));
        named.emplace_back("lengths", std::move(lengths));
        return named;
    }

    // The logits as problem_type reads them; non-finite logits are an error that
    // names the input (weights that hold NaN, or overflow), not a silent label.
    std::vector<double> scores(const std::vector<float>& logits, std::size_t input) const {
        for (std::size_t i = 0; i < logits.size(); ++i)
            if (!std::isfinite(logits[i]))
                throw error("encode: the logits of input " + std::to_string(input) + " are not finite (label " + std::to_string(i) +
                            ": " + std::to_string(logits[i]) + "); the weights or the config make NaN or infinity");
        std::vector<double> s(logits.begin(), logits.end());
        if (config_.problem_type == config::problem::regression) return s;
        if (config_.problem_type == config::problem::multi_label) {
            for (auto& v : s) v = 1.0 / (1.0 + std::exp(-v));
            return s;
        }
        const double top = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (auto& v : s) sum += (v = std::exp(v - top));
        for (auto& v : s) v /= sum;
        return s;
    }

    std::map<std::tuple<std::int64_t, std::int64_t, bool>, step_graph> graphs_;
    double seconds_ = 0;
    std::int64_t tokens_ = 0, padded_ = 0;
};

}  // namespace scribe::runtime
