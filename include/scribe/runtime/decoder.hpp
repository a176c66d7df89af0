// scribe/runtime/decoder.hpp — a decoder model loaded from a Hugging Face folder
// and run on the CPU backend: weights checked against config.json and bound once
// (mmapped, or converted once to the dtype asked for), prefill graphs per prompt
// bucket and a decode graph built on first use, the KV cache donated to each step
// so it is updated in place, and the generation loop with sampling.
//
//     runtime::decoder<models::llama_family> lm("path/to/llama", {.type = dtype::bf16});
//     auto out = lm.generate({tokens}, {.max_new_tokens = 20});
//
// The model family (models/<family>.hpp's `<family>_family`; models/registry.hpp
// picks one from config.json) supplies the config, the weight list, the
// checkpoint's name prefix and the graph builder; nothing here names a model.
//
// Loading, tensor-parallel ranks (load_options::tp = N: threads of this process,
// or this process as one MPI rank with load_options::comm), pre-sharded folders
// and running a step on every rank are runtime/loaded_model.hpp's; every rank
// runs the same graphs on its shards of the weights and its heads of the cache.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "loaded_model.hpp"
#include "sampling.hpp"
#include "stepper.hpp"

namespace scribe::runtime {

struct generate_options {
    std::int64_t max_new_tokens = 32;
    sampling sample{};
    bool stop_at_eos = true;
    // The tokens that end a sequence (with stop_at_eos); empty: the model's
    // (decoder::eos_ids(): generation_config.json's eos_token_id, else
    // config.json's, each one id or a list).
    std::vector<std::int32_t> eos{};
    // Only tokens below this id are chosen (a tokenizer with fewer ids than the
    // model's vocabulary, whose padding rows have no text); 0: every token.
    std::int64_t vocab_limit = 0;
    // Called with (sequence, token) as each token is chosen; return false to stop
    // generating for every sequence.
    std::function<bool(std::size_t, std::int32_t)> on_token{};
};

struct generation {
    std::vector<std::vector<std::int32_t>> tokens;  // new tokens of each sequence
    std::int64_t prompt_tokens = 0;                 // real (unpadded) prompt tokens
    std::int64_t bucket = 0, capacity = 0;
    double prefill_seconds = 0, decode_seconds = 0;  // running the graphs (building them is not counted)
    std::int64_t decode_steps = 0;  // decode graph runs (each makes one token per sequence)
    // Of decode_seconds, the decode graph's runs; the rest is the runtime's own work
    // between them (choosing each token, the next step's inputs).
    double decode_graph_seconds = 0;
};


template <class Family>
class decoder : public loaded_model<Family> {
    using base = loaded_model<Family>;
    using typename base::step_graph;
    using base::opt_;
    using base::config_;
    using base::ranks_;
    using base::run;
    using base::make;
    using base::as_floats;
    using base::check_budget;

public:
    using config = typename Family::config;

    decoder(const std::filesystem::path& dir, load_options opt = {}) : base(dir, std::move(opt), "decoder") {
        std::vector<std::int64_t> defaults;
        for (std::int64_t b = 16; b < config_.n_positions; b *= 2) defaults.push_back(b);
        defaults.push_back(config_.n_positions);
        this->set_buckets(defaults);
        eos_ = models::generation_eos(dir, config_.vocab_size);
        if (eos_.empty()) eos_ = config_.eos_token_ids;
    }

    // The tokens generation stops at: generation_config.json's eos_token_id where
    // the folder has one (as Hugging Face's generate() reads it), else config.json's.
    const std::vector<std::int32_t>& eos_ids() const { return eos_; }

    // Logits of every position of one prompt, [tokens][vocab] as f32: the prefill
    // graph with all positions' logits (the golden tests compare them).
    std::vector<std::vector<float>> prompt_logits(const std::vector<std::int32_t>& prompt) {
        check_prompts({prompt}, 0);
        const auto bucket = bucket_for(static_cast<std::int64_t>(prompt.size()));
        auto& step = prefill(bucket, bucket, 1, false);
        auto outs = run(step, [&](std::size_t) { return prefill_inputs(step, {prompt}, bucket, new_caches(bucket, 1)); });
        const auto V = config_.vocab_size;
        const auto all = as_floats(outs[0][0]);
        std::vector<std::vector<float>> rows;
        for (std::size_t t = 0; t < prompt.size(); ++t)
            rows.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(t) * V, all.begin() + static_cast<std::ptrdiff_t>(t + 1) * V);
        return rows;
    }

    // Generates for a batch of prompts of any lengths (each at least one token).
    generation generate(const std::vector<std::vector<std::int32_t>>& prompts, const generate_options& o) {
        o.sample.check();
        if (o.max_new_tokens < 1) throw error("generate: max_new_tokens must be at least 1");
        if (o.vocab_limit < 0 || o.vocab_limit > config_.vocab_size)
            throw error("generate: vocab_limit " + std::to_string(o.vocab_limit) + " must be between 0 and the vocabulary's " +
                        std::to_string(config_.vocab_size));
        check_prompts(prompts, o.max_new_tokens);
        const auto batch = static_cast<std::int64_t>(prompts.size());
        std::int64_t longest = 0;
        generation out;
        for (const auto& p : prompts) {
            longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(p.size()));
            out.prompt_tokens += static_cast<std::int64_t>(p.size());
        }
        out.bucket = bucket_for(longest);
        out.capacity = capacity_for(longest, o.max_new_tokens, out.bucket);
        check_budget(batch, out.capacity);
        out.tokens.assign(prompts.size(), {});

        std::mt19937_64 rng(o.sample.seed);
        std::vector<bool> done(prompts.size(), false);
        std::vector<std::int32_t> last(prompts.size());
        bool stop = false;
        const auto choosable = static_cast<std::size_t>(o.vocab_limit ? o.vocab_limit : config_.vocab_size);
        const auto& stops = o.eos.empty() ? eos_ : o.eos;
        std::int64_t step = 0;  // the token being chosen: 0 from prefill, then one per decode step
        auto choose = [&](std::vector<float> logits) {
            // Ranks in other processes choose from rank 0's logits, so they agree.
            if (opt_.comm && opt_.comm->size() > 1) opt_.comm->broadcast(logits.data(), logits.size() * 4, 0);
            const auto V = static_cast<std::size_t>(config_.vocab_size);
            for (std::size_t b = 0; b < prompts.size(); ++b) {
                if (done[b]) continue;
                check_finite_logits(std::span<const float>(logits.data() + b * V, V), step, b);
                const auto t = sample(std::span<const float>(logits.data() + b * V, choosable), o.sample, rng);
                out.tokens[b].push_back(t);
                last[b] = t;
                if (o.stop_at_eos && std::find(stops.begin(), stops.end(), t) != stops.end()) done[b] = true;
                if (o.on_token && !o.on_token(b, t)) stop = true;
            }
        };

        auto& pre = prefill(out.bucket, out.capacity, batch, true);  // built on first use, not timed
        auto& dec = decode(out.capacity, batch, 1);
        const auto t0 = std::chrono::steady_clock::now();
        auto outs = run(pre, [&](std::size_t) { return prefill_inputs(pre, prompts, out.bucket, new_caches(out.capacity, batch)); });
        out.prefill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        choose(as_floats(outs[0][0]));

        const auto t1 = std::chrono::steady_clock::now();
        std::vector<std::int32_t> ids(prompts.size()), positions(prompts.size());
        for (step = 1; step < o.max_new_tokens && !stop; ++step) {
            if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
            for (std::size_t b = 0; b < prompts.size(); ++b) {
                ids[b] = last[b];
                positions[b] = static_cast<std::int32_t>(prompts[b].size() + out.tokens[b].size() - 1);
            }
            outs = run(dec, [&](std::size_t k) {
                cpu::named_arrays in;
                in.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", batch}, {"seq", 1}}, ids.data(), ids.size() * 4));
                in.emplace_back("positions", cpu::array::borrow(dtype::s32, {{"batch", batch}}, positions.data(), positions.size() * 4));
                for (std::size_t j = 1; j < outs[k].size(); ++j) in.emplace_back(dec.caches[j - 1], std::move(outs[k][j]));
                return in;
            });
            ++out.decode_steps;
            out.decode_graph_seconds += base::last_run_seconds();
            choose(as_floats(outs[0][0]));
        }
        out.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        return out;
    }

    // Refuses prompts that generate() would refuse (empty, ids outside the
    // vocabulary, too long for the positions or the buckets, too many), before
    // anything is run: a caller can check before it prints or streams.
    void check_prompts(const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t new_tokens) const {
        if (prompts.empty()) throw error("generate: no prompts");
        if (static_cast<std::int64_t>(prompts.size()) > max_batch)
            throw error("generate: " + std::to_string(prompts.size()) + " prompts in one batch; at most " + std::to_string(max_batch));
        for (std::size_t b = 0; b < prompts.size(); ++b) {
            const auto n = static_cast<std::int64_t>(prompts[b].size());
            if (n == 0) throw error("generate: prompt " + std::to_string(b) + " is empty; give at least one token");
            for (auto t : prompts[b])
                if (t < 0 || t >= config_.vocab_size)
                    throw error("generate: prompt " + std::to_string(b) + " has token " + std::to_string(t) +
                                ", outside the vocabulary of " + std::to_string(config_.vocab_size));
            if (n > config_.n_positions)
                throw error("generate: prompt " + std::to_string(b) + " has " + std::to_string(n) +
                            " tokens but the model has " + std::to_string(config_.n_positions) + " positions");
            if (new_tokens > config_.n_positions - n)
                throw error("generate: prompt " + std::to_string(b) + " (" + std::to_string(n) + " tokens) + " +
                            std::to_string(new_tokens) + " new tokens exceeds the model's " +
                            std::to_string(config_.n_positions) + " positions; ask for at most " +
                            std::to_string(config_.n_positions - n) + " new tokens");
        }
        (void)bucket_for([&] {
            std::int64_t m = 0;
            for (const auto& p : prompts) m = std::max<std::int64_t>(m, static_cast<std::int64_t>(p.size()));
            return m;
        }());
    }

    // The graphs, built and bound on first use (export and inspection use them too).
    const graph& prefill_graph(std::int64_t bucket, std::int64_t capacity, std::int64_t batch, bool last_only) {
        return *prefill(bucket, capacity, batch, last_only).g;
    }
    const graph& decode_graph(std::int64_t capacity, std::int64_t batch) { return *decode(capacity, batch, 1).g; }
    // Speculative decoding's verification graph: decode over `tokens` tokens at
    // once (models/blocks.hpp's verify), logits [batch, tokens, vocab].
    const graph& verify_graph(std::int64_t capacity, std::int64_t batch, std::int64_t tokens) {
        return *decode(capacity, batch, tokens).g;
    }

    // One sequence stepped by hand (runtime/stepper.hpp): its own KV cache on
    // every rank of this process, filled by the prefill graphs and extended by the
    // decode graph (one token) or a verify graph (several). Rewinding only moves
    // the length back: a position's cache rows are masked until a token fed there
    // overwrites them. Ranks in other processes (MPI) get rank 0's logits.
    class sequence final : public stepper {
    public:
        explicit sequence(decoder& lm) : lm_(lm) {}

        std::int64_t vocab_size() const override { return lm_.config_.vocab_size; }
        std::int64_t max_positions() const override { return lm_.config_.n_positions; }
        std::int64_t length() const override { return length_; }
        std::int64_t capacity() const override { return capacity_; }
        std::int64_t bucket() const override { return bucket_; }

        void prepare(std::int64_t prompt_tokens, std::int64_t room, std::int64_t tokens) override {
            const auto [bucket, capacity] = shape_for(prompt_tokens, room);
            (void)lm_.prefill(bucket, capacity, 1, true);
            if (tokens >= 1 && tokens <= capacity) (void)lm_.decode(capacity, 1, tokens);
        }

        std::vector<float> start(const std::vector<std::int32_t>& prompt, std::int64_t room) override {
            lm_.check_prompts({prompt}, 0);
            const auto n = static_cast<std::int64_t>(prompt.size());
            std::tie(bucket_, capacity_) = shape_for(n, room);
            lm_.check_budget(1, capacity_);
            caches_.clear();
            length_ = 0;
            auto& pre = lm_.prefill(bucket_, capacity_, 1, true);
            auto outs = lm_.run(pre, [&](std::size_t) { return lm_.prefill_inputs(pre, {prompt}, bucket_, lm_.new_caches(capacity_, 1)); });
            length_ = n;
            return keep(outs);
        }

        std::vector<float> extend(std::span<const std::int32_t> tokens) override {
            const auto n = static_cast<std::int64_t>(tokens.size());
            if (caches_.empty()) throw error("sequence: start() it before extend() (again after a step that failed)");
            if (n < 1 || n > capacity_ - length_)
                throw error("sequence: " + std::to_string(n) + " tokens fed at position " + std::to_string(length_) +
                            " of a cache of " + std::to_string(capacity_) + " positions; at most " + std::to_string(capacity_ - length_));
            for (auto t : tokens)
                if (t < 0 || t >= lm_.config_.vocab_size)
                    throw error("sequence: token " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(lm_.config_.vocab_size));
            ids_.assign(tokens.begin(), tokens.end());
            std::int32_t position = static_cast<std::int32_t>(length_);
            auto& step = lm_.decode(capacity_, 1, n);
            std::vector<std::vector<cpu::array>> outs;
            try {
                outs = lm_.run(step, [&](std::size_t k) {
                    cpu::named_arrays in;
                    in.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", 1}, {"seq", n}}, ids_.data(), ids_.size() * 4));
                    in.emplace_back("positions", cpu::array::borrow(dtype::s32, {{"batch", 1}}, &position, 4));
                    for (std::size_t j = 0; j < caches_[k].size(); ++j) in.emplace_back(step.caches[j], std::move(caches_[k][j]));
                    return in;
                });
            } catch (...) {
                caches_.clear();  // donated to the failed run: the sequence must be started again
                throw;
            }
            length_ += n;
            return keep(outs);
        }

        void rewind(std::int64_t length) override {
            if (length < 1 || length > length_)
                throw error("sequence: rewind to " + std::to_string(length) + " positions, but it holds " + std::to_string(length_));
            length_ = length;
        }

    private:
        // The prefill bucket and the cache's positions for a prompt of `tokens` and `room` after it.
        std::pair<std::int64_t, std::int64_t> shape_for(std::int64_t tokens, std::int64_t room) const {
            const auto bucket = lm_.bucket_for(tokens);
            return {bucket, lm_.capacity_for(tokens, std::clamp<std::int64_t>(room, 0, lm_.config_.n_positions), bucket)};
        }

        std::vector<float> keep(std::vector<std::vector<cpu::array>>& outs) { return lm_.keep_caches(outs, caches_); }

        decoder& lm_;
        std::vector<std::vector<cpu::array>> caches_;  // per rank of this process
        std::vector<std::int32_t> ids_;
        std::int64_t length_ = 0, capacity_ = 0, bucket_ = 0;
    };

    // A batch of sequences stepped together by hand, one token a row each step
    // (what Hugging Face's generate() loop asks of a batch: python/scribe/hf.py):
    // prompts of any lengths prefilled as generate() prefills them, then every
    // row fed its next token at its own position by the batch's decode graph, so
    // the logits are generate()'s for the same tokens.
    class batch_sequence {
    public:
        explicit batch_sequence(decoder& lm) : lm_(lm) {}

        // Starts over with `prompts` (each at least one token), keeping room for
        // `room` positions after the longest (as the model's positions allow): the
        // logits of each prompt's last token, [batch][vocab] row-major as f32.
        std::vector<float> start(const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t room) {
            lm_.check_prompts(prompts, 0);
            std::int64_t longest = 0;
            for (const auto& p : prompts) longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(p.size()));
            const auto batch = static_cast<std::int64_t>(prompts.size());
            bucket_ = lm_.bucket_for(longest);
            capacity_ = lm_.capacity_for(longest, std::clamp<std::int64_t>(room, 0, lm_.config_.n_positions), bucket_);
            lm_.check_budget(batch, capacity_);
            caches_.clear();
            lengths_.clear();
            auto& pre = lm_.prefill(bucket_, capacity_, batch, true);
            auto outs = lm_.run(pre, [&](std::size_t) { return lm_.prefill_inputs(pre, prompts, bucket_, lm_.new_caches(capacity_, batch)); });
            for (const auto& p : prompts) lengths_.push_back(static_cast<std::int32_t>(p.size()));
            return lm_.keep_caches(outs, caches_);
        }

        // Feeds row b the token tokens[b] at position length(b): the logits after
        // each, [batch][vocab]. Every row's length grows by one.
        std::vector<float> step(std::span<const std::int32_t> tokens) {
            if (caches_.empty()) throw error("batch sequence: start() it before step() (again after a step that failed)");
            const auto batch = static_cast<std::int64_t>(lengths_.size());
            if (static_cast<std::int64_t>(tokens.size()) != batch)
                throw error("batch sequence: " + std::to_string(tokens.size()) + " tokens fed to a batch of " + std::to_string(batch));
            for (std::size_t b = 0; b < lengths_.size(); ++b) {
                if (lengths_[b] >= capacity_)
                    throw error("batch sequence: row " + std::to_string(b) + " holds " + std::to_string(lengths_[b]) +
                                " positions, all its cache has");
                if (tokens[b] < 0 || tokens[b] >= lm_.config_.vocab_size)
                    throw error("batch sequence: token " + std::to_string(tokens[b]) + " of row " + std::to_string(b) +
                                " is outside the vocabulary of " + std::to_string(lm_.config_.vocab_size));
            }
            ids_.assign(tokens.begin(), tokens.end());
            auto& dec = lm_.decode(capacity_, batch, 1);
            std::vector<std::vector<cpu::array>> outs;
            try {
                outs = lm_.run(dec, [&](std::size_t k) {
                    cpu::named_arrays in;
                    in.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", batch}, {"seq", 1}}, ids_.data(), ids_.size() * 4));
                    in.emplace_back("positions", cpu::array::borrow(dtype::s32, {{"batch", batch}}, lengths_.data(), lengths_.size() * 4));
                    for (std::size_t j = 0; j < caches_[k].size(); ++j) in.emplace_back(dec.caches[j], std::move(caches_[k][j]));
                    return in;
                });
            } catch (...) {
                caches_.clear();  // donated to the failed run: the batch must be started again
                throw;
            }
            for (auto& n : lengths_) ++n;
            return lm_.keep_caches(outs, caches_);
        }

        std::int64_t batch() const { return static_cast<std::int64_t>(lengths_.size()); }
        std::int64_t length(std::size_t row) const { return lengths_.at(row); }
        std::int64_t capacity() const { return capacity_; }

    private:
        decoder& lm_;
        std::vector<std::vector<cpu::array>> caches_;  // per rank of this process
        std::vector<std::int32_t> ids_, lengths_;      // the step's tokens; each row's positions held
        std::int64_t capacity_ = 0, bucket_ = 0;
    };

    // The smallest bucket that holds `tokens`, or a clear error.
    std::int64_t bucket_for(std::int64_t tokens) const {
        for (auto b : opt_.buckets)
            if (b >= tokens) return b;
        std::string list;
        for (auto b : opt_.buckets) list += (list.empty() ? "" : ", ") + std::to_string(b);
        throw error("prompt of " + std::to_string(tokens) + " tokens is longer than the largest prefill bucket " +
                    std::to_string(opt_.buckets.back()) + " (buckets: " + list + "); shorten the prompt");
    }

private:
    // Keeps each rank's updated caches of a run's outputs (all but the first) in
    // `caches`; returns the logits (the first output, rank 0's on every rank).
    std::vector<float> keep_caches(std::vector<std::vector<cpu::array>>& outs, std::vector<std::vector<cpu::array>>& caches) {
        caches.assign(outs.size(), {});
        for (std::size_t k = 0; k < outs.size(); ++k)
            for (std::size_t j = 1; j < outs[k].size(); ++j) caches[k].push_back(std::move(outs[k][j]));
        auto logits = as_floats(outs[0][0]);
        if (opt_.comm && opt_.comm->size() > 1) opt_.comm->broadcast(logits.data(), logits.size() * 4, 0);
        return logits;
    }

    // Logits with a NaN or an infinity (weights that hold them, or overflow) end
    // generation with an error rather than a silent, empty continuation. Checked by
    // vectors: value by value, the check and the greedy argmax after it took about
    // 60 us a step for GPT-2's 50257 logits, half a step's time outside its graph.
    void check_finite_logits(std::span<const float> row, std::int64_t step, std::size_t sequence) const {
        const auto n = static_cast<std::int64_t>(row.size());
        if (std::isfinite(cpu::simd::max(row.data(), n)) && std::isfinite(cpu::simd::min(row.data(), n))) return;
        for (std::size_t v = 0; v < row.size(); ++v)
            if (!std::isfinite(row[v]))
                throw error("generate: the logits of sequence " + std::to_string(sequence) + " at step " + std::to_string(step) +
                            (step == 0 ? " (prefill)" : " (decode)") + " are not finite (token " + std::to_string(v) + ": " +
                            std::to_string(row[v]) + "); the weights or the config make NaN or infinity" +
                            (opt_.check_finite ? "" : " (--check-finite names the first layer that does)"));
    }


    step_graph& prefill(std::int64_t bucket, std::int64_t capacity, std::int64_t batch, bool last_only) {
        const auto key = std::make_tuple(bucket, capacity, batch, last_only);
        auto it = prefills_.find(key);
        if (it == prefills_.end()) {
            const auto shape = typename Family::graph_shape{.batch = batch, .seq = bucket, .capacity = capacity, .decode = false,
                                                            .last_only = last_only, .tp = opt_.tp, .weights = opt_.weights};
            it = prefills_.emplace(key, make("prefill_" + std::to_string(bucket), [&]<auto D>(graph& g) {
                Family::template build<D>(g, config_, shape);
            })).first;
        }
        return it->second;
    }

    // The decode graph (tokens 1), or the verify graph of `tokens` tokens.
    step_graph& decode(std::int64_t capacity, std::int64_t batch, std::int64_t tokens) {
        const auto key = std::make_tuple(capacity, batch, tokens);
        auto it = decodes_.find(key);
        if (it == decodes_.end()) {
            const auto shape = typename Family::graph_shape{.batch = batch, .seq = tokens, .capacity = capacity, .decode = true,
                                                            .tp = opt_.tp, .weights = opt_.weights};
            it = decodes_.emplace(key, make(tokens == 1 ? std::string("decode") : "verify_" + std::to_string(tokens),
                                            [&]<auto D>(graph& g) { Family::template build<D>(g, config_, shape); })).first;
        }
        return it->second;
    }

    // The KV cache's positions for prompts of up to `longest` tokens and `extra`
    // after them: rounded up to 32, within the model's positions, and at least the
    // bucket prefill writes.
    std::int64_t capacity_for(std::int64_t longest, std::int64_t extra, std::int64_t bucket) const {
        const auto needed = std::min(config_.n_positions, (longest + extra + 31) / 32 * 32);
        return std::max(bucket, needed);
    }

    std::vector<cpu::array> new_caches(std::int64_t capacity, std::int64_t batch) const {
        std::vector<cpu::array> c;
        for (const auto& sh : Family::cache_shapes(config_, batch, capacity, opt_.tp)) c.emplace_back(opt_.type, sh);
        return c;
    }

    cpu::named_arrays prefill_inputs(const step_graph& s, const std::vector<std::vector<std::int32_t>>& prompts,
                                     std::int64_t bucket, std::vector<cpu::array> caches) {
        const auto batch = static_cast<std::int64_t>(prompts.size());
        auto ids = cpu::array(dtype::s32, {{"batch", batch}, {"seq", bucket}});  // padding: token 0
        auto lengths = cpu::array(dtype::s32, {{"batch", batch}});
        auto* pid = reinterpret_cast<std::int32_t*>(ids.mutable_data());
        auto* plen = reinterpret_cast<std::int32_t*>(lengths.mutable_data());
        for (std::size_t b = 0; b < prompts.size(); ++b) {
            std::copy(prompts[b].begin(), prompts[b].end(), pid + static_cast<std::int64_t>(b) * bucket);
            plen[b] = static_cast<std::int32_t>(prompts[b].size());
        }
        cpu::named_arrays in;
        in.emplace_back("ids", std::move(ids));
        in.emplace_back("lengths", std::move(lengths));
        for (std::size_t j = 0; j < caches.size(); ++j) in.emplace_back(s.caches.at(j), std::move(caches[j]));
        return in;
    }

    std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, bool>, step_graph> prefills_;
    std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, step_graph> decodes_;  // capacity, batch, tokens
    std::vector<std::int32_t> eos_;  // eos_ids()
};

}  // namespace scribe::runtime
