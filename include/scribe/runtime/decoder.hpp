// scribe/runtime/decoder.hpp — a decoder model loaded from a Hugging Face folder
// and run on the CPU backend: weights checked against config.json and bound once
// (mmapped, or converted once to the dtype asked for), prefill graphs per prompt
// bucket and a decode graph built on first use, the KV cache donated to each step
// so it is updated in place, and the generation loop with sampling.
//
//     runtime::decoder<models::gpt2::family> lm("path/to/gpt2", {.type = dtype::f32});
//     auto out = lm.generate({tokens}, {.max_new_tokens = 20});
//
// The model family (models/gpt2.hpp's `family`) supplies the config, the weight
// list and the graph builder; nothing here names a model.
#pragma once

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "../cpu.hpp"
#include "../io/safetensors.hpp"
#include "sampling.hpp"

namespace scribe::runtime {

struct load_options {
    dtype type = dtype::f32;  // the dtype the model runs in: f32, f16 or bf16
    unsigned threads = 0;     // CPU threads; 0: one per hardware thread
    // Prompt lengths the prefill graphs are built for (a prompt is right-padded to
    // the smallest that holds it); empty: powers of two from 16, and the model's
    // positions.
    std::vector<std::int64_t> buckets{};
    // Called while weights load: bytes done so far, bytes in all.
    std::function<void(std::size_t, std::size_t)> progress{};
};

struct generate_options {
    std::int64_t max_new_tokens = 32;
    sampling sample{};
    bool stop_at_eos = true;
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
};

namespace detail {

// Converts `n` elements of type `from` at `src` to `to` at `dst` (floats only).
inline void convert_floats(dtype from, const unsigned char* src, dtype to, unsigned char* dst, std::int64_t n) {
    const auto fs = info(from).bytes, ts = info(to).bytes;
    for (std::int64_t i = 0; i < n; ++i)
        store_as(to, load_as_double(from, src + static_cast<std::size_t>(i) * fs), dst + static_cast<std::size_t>(i) * ts);
}

inline std::string shape_text(const std::vector<std::int64_t>& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

}  // namespace detail

template <class Family>
class decoder {
public:
    using config = typename Family::config;

    decoder(const std::filesystem::path& dir, load_options opt = {})
        : dir_(dir), opt_(std::move(opt)), config_(config::load(dir / "config.json")), checkpoint_(dir) {
        if (opt_.type != dtype::f32 && opt_.type != dtype::f16 && opt_.type != dtype::bf16)
            throw error("decoder: the model runs in f32, f16 or bf16, not " + std::string(name(opt_.type)));
        load_weights();
        if (opt_.buckets.empty()) {
            for (std::int64_t b = 16; b < config_.n_positions; b *= 2) opt_.buckets.push_back(b);
            opt_.buckets.push_back(config_.n_positions);
        }
        for (auto b : opt_.buckets)
            if (b <= 0 || b > config_.n_positions)
                throw error("decoder: bucket " + std::to_string(b) + " must be between 1 and the model's " +
                            std::to_string(config_.n_positions) + " positions");
        std::sort(opt_.buckets.begin(), opt_.buckets.end());
        opt_.buckets.erase(std::unique(opt_.buckets.begin(), opt_.buckets.end()), opt_.buckets.end());
    }

    const config& model_config() const { return config_; }
    dtype type() const { return opt_.type; }
    const std::vector<std::int64_t>& buckets() const { return opt_.buckets; }
    std::size_t weight_bytes() const { return weight_bytes_; }
    std::size_t converted_bytes() const { return converted_bytes_; }
    const std::filesystem::path& folder() const { return dir_; }

    // Logits of every position of one prompt, [tokens][vocab] as f32: the prefill
    // graph with all positions' logits (the golden tests compare them).
    std::vector<std::vector<float>> prompt_logits(const std::vector<std::int32_t>& prompt) {
        check_prompts({prompt}, 0);
        const auto bucket = bucket_for(static_cast<std::int64_t>(prompt.size()));
        auto& step = prefill(bucket, bucket, 1, false);
        auto caches = new_caches(bucket, 1);
        auto outs = step.exec->run_donating(prefill_inputs({prompt}, bucket, std::move(caches)));
        const auto V = config_.vocab_size;
        const auto all = as_floats(outs[0]);
        std::vector<std::vector<float>> rows;
        for (std::size_t t = 0; t < prompt.size(); ++t)
            rows.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(t) * V, all.begin() + static_cast<std::ptrdiff_t>(t + 1) * V);
        return rows;
    }

    // Generates for a batch of prompts of any lengths (each at least one token).
    generation generate(const std::vector<std::vector<std::int32_t>>& prompts, const generate_options& o) {
        o.sample.check();
        if (o.max_new_tokens < 1) throw error("generate: max_new_tokens must be at least 1");
        check_prompts(prompts, o.max_new_tokens);
        const auto batch = static_cast<std::int64_t>(prompts.size());
        std::int64_t longest = 0;
        generation out;
        for (const auto& p : prompts) {
            longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(p.size()));
            out.prompt_tokens += static_cast<std::int64_t>(p.size());
        }
        out.bucket = bucket_for(longest);
        // The cache holds the longest prompt and its new tokens (rounded up to 32,
        // within the model's positions) and at least the bucket prefill writes.
        const auto needed = std::min(config_.n_positions, (longest + o.max_new_tokens + 31) / 32 * 32);
        out.capacity = std::max(out.bucket, needed);
        out.tokens.assign(prompts.size(), {});

        std::mt19937_64 rng(o.sample.seed);
        std::vector<bool> done(prompts.size(), false);
        std::vector<std::int32_t> last(prompts.size());
        bool stop = false;
        auto choose = [&](const std::vector<float>& logits) {
            const auto V = static_cast<std::size_t>(config_.vocab_size);
            for (std::size_t b = 0; b < prompts.size(); ++b) {
                if (done[b]) continue;
                const auto t = sample(std::span<const float>(logits.data() + b * V, V), o.sample, rng);
                out.tokens[b].push_back(t);
                last[b] = t;
                if (o.stop_at_eos && config_.eos_token_id && t == *config_.eos_token_id) done[b] = true;
                if (o.on_token && !o.on_token(b, t)) stop = true;
            }
        };

        auto& pre = prefill(out.bucket, out.capacity, batch, true);  // built on first use, not timed
        auto& dec = decode(out.capacity, batch);
        const auto t0 = std::chrono::steady_clock::now();
        auto outs = pre.exec->run_donating(prefill_inputs(prompts, out.bucket, new_caches(out.capacity, batch)));
        out.prefill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        choose(as_floats(outs[0]));

        const auto t1 = std::chrono::steady_clock::now();
        std::vector<std::int32_t> ids(prompts.size()), positions(prompts.size());
        for (std::int64_t step = 1; step < o.max_new_tokens && !stop; ++step) {
            if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
            for (std::size_t b = 0; b < prompts.size(); ++b) {
                ids[b] = last[b];
                positions[b] = static_cast<std::int32_t>(prompts[b].size() + out.tokens[b].size() - 1);
            }
            std::vector<cpu::array> in;
            in.push_back(cpu::array::borrow(dtype::s32, {{"batch", batch}, {"seq", 1}}, ids.data(), ids.size() * 4));
            in.push_back(cpu::array::borrow(dtype::s32, {{"batch", batch}}, positions.data(), positions.size() * 4));
            for (std::size_t k = 1; k < outs.size(); ++k) in.push_back(std::move(outs[k]));
            outs = dec.exec->run_donating(std::move(in));
            ++out.decode_steps;
            choose(as_floats(outs[0]));
        }
        out.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        return out;
    }

    // The graphs, built and bound on first use (export and inspection use them too).
    const graph& prefill_graph(std::int64_t bucket, std::int64_t capacity, std::int64_t batch, bool last_only) {
        return *prefill(bucket, capacity, batch, last_only).g;
    }
    const graph& decode_graph(std::int64_t capacity, std::int64_t batch) { return *decode(capacity, batch).g; }

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
    struct step_graph {
        std::unique_ptr<graph> g;
        std::unique_ptr<cpu::executor> exec;
    };

    void check_prompts(const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t new_tokens) const {
        if (prompts.empty()) throw error("generate: no prompts");
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
            if (n + new_tokens > config_.n_positions)
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

    // Reads every weight the family lists; refuses missing, misshapen, non-float and
    // unknown tensors, naming the file and the tensor.
    void load_weights() {
        const auto specs = Family::weights(config_);
        auto stored_name = [&](const std::string& n) -> std::optional<std::string> {
            if (checkpoint_.contains(n)) return n;
            if (checkpoint_.contains("transformer." + n)) return "transformer." + n;
            return std::nullopt;
        };
        std::size_t total = 0, done = 0;
        std::vector<std::string> found;
        for (const auto& s : specs) {
            const auto n = stored_name(s.name);
            if (!n)
                throw error((dir_ / "model.safetensors").string() + ": tensor `" + s.name + "` is missing (a " +
                            Family::name + " with " + std::to_string(config_.n_layer) + " layers needs it)");
            found.push_back(*n);
            total += checkpoint_.bytes(*n).size();
        }
        for (const auto& n : checkpoint_.names()) {
            if (std::find(found.begin(), found.end(), n) != found.end() || Family::ignored_tensor(n)) continue;
            throw error(checkpoint_.shard_of(n).path().string() + ": unexpected tensor `" + n + "` (not a weight of a " +
                        Family::name + " with this config.json)");
        }
        for (std::size_t i = 0; i < specs.size(); ++i) {
            const auto& s = specs[i];
            const auto& e = checkpoint_.entry(found[i]);
            const auto where = checkpoint_.shard_of(found[i]).path().string();
            if (e.shape != s.stored)
                throw error(where + ": tensor `" + found[i] + "` is " + detail::shape_text(e.shape) + " but config.json needs " +
                            detail::shape_text(s.stored));
            if (e.type != dtype::f32 && e.type != dtype::f16 && e.type != dtype::bf16)
                throw error(where + ": tensor `" + found[i] + "` is " + std::string(name(e.type)) +
                            "; weights must be F32, F16 or BF16");
            const auto bytes = checkpoint_.bytes(found[i]);
            if (e.type == opt_.type) {
                weights_[s.name] = cpu::array::borrow(e.type, s.dims, bytes.data(), bytes.size());
            } else {  // converted once, here
                auto a = cpu::array::uninitialized(opt_.type, s.dims);
                detail::convert_floats(e.type, bytes.data(), opt_.type, a.mutable_data(), e.elements());
                converted_bytes_ += a.bytes();
                weights_[s.name] = std::move(a);
            }
            weight_bytes_ += weights_[s.name].bytes();
            done += bytes.size();
            if (opt_.progress) opt_.progress(done, total);
        }
    }

    void bind_weights(step_graph& s) {
        for (const auto& n : s.g->nodes()) {
            if (n.kind != op::parameter) continue;
            const auto it = weights_.find(n.label);
            if (it != weights_.end()) s.exec->bind(n.parameter_number, it->second.view());
        }
    }

    template <class Build>
    step_graph make(const std::string& name, Build&& build) {
        step_graph s{std::make_unique<graph>(name), nullptr};
        switch (opt_.type) {
            case dtype::f16: build.template operator()<f16>(*s.g); break;
            case dtype::bf16: build.template operator()<bf16>(*s.g); break;
            default: build.template operator()<f32>(*s.g); break;
        }
        s.exec = std::make_unique<cpu::executor>(*s.g, cpu::options{.threads = opt_.threads});
        bind_weights(s);
        return s;
    }

    step_graph& prefill(std::int64_t bucket, std::int64_t capacity, std::int64_t batch, bool last_only) {
        const auto key = std::make_tuple(bucket, capacity, batch, last_only);
        auto it = prefills_.find(key);
        if (it == prefills_.end()) {
            const auto shape = typename Family::graph_shape{.batch = batch, .seq = bucket, .capacity = capacity,
                                                            .decode = false, .last_only = last_only};
            it = prefills_.emplace(key, make("prefill_" + std::to_string(bucket), [&]<auto D>(graph& g) {
                Family::template build<D>(g, config_, shape);
            })).first;
        }
        return it->second;
    }

    step_graph& decode(std::int64_t capacity, std::int64_t batch) {
        const auto key = std::make_tuple(capacity, batch);
        auto it = decodes_.find(key);
        if (it == decodes_.end()) {
            const auto shape = typename Family::graph_shape{.batch = batch, .seq = 1, .capacity = capacity, .decode = true};
            it = decodes_.emplace(key, make("decode", [&]<auto D>(graph& g) { Family::template build<D>(g, config_, shape); })).first;
        }
        return it->second;
    }

    std::vector<cpu::array> new_caches(std::int64_t capacity, std::int64_t batch) const {
        std::vector<cpu::array> c;
        for (std::int64_t l = 0; l < 2 * config_.n_layer; ++l)
            c.emplace_back(opt_.type, shape{{"batch", batch}, {"cache", capacity}, {"heads", config_.n_head},
                                            {"head_dim", config_.head_dim()}});
        return c;
    }

    std::vector<cpu::array> prefill_inputs(const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t bucket,
                                           std::vector<cpu::array> caches) {
        const auto batch = static_cast<std::int64_t>(prompts.size());
        auto ids = cpu::array(dtype::s32, {{"batch", batch}, {"seq", bucket}});  // padding: token 0
        auto lengths = cpu::array(dtype::s32, {{"batch", batch}});
        auto* pid = reinterpret_cast<std::int32_t*>(ids.mutable_data());
        auto* plen = reinterpret_cast<std::int32_t*>(lengths.mutable_data());
        for (std::size_t b = 0; b < prompts.size(); ++b) {
            std::copy(prompts[b].begin(), prompts[b].end(), pid + static_cast<std::int64_t>(b) * bucket);
            plen[b] = static_cast<std::int32_t>(prompts[b].size());
        }
        std::vector<cpu::array> in;
        in.push_back(std::move(ids));
        in.push_back(std::move(lengths));
        for (auto& c : caches) in.push_back(std::move(c));
        return in;
    }

    static std::vector<float> as_floats(const cpu::array& a) {
        std::vector<float> v(static_cast<std::size_t>(a.size()));
        if (a.type() == dtype::f32) {
            std::memcpy(v.data(), a.data(), v.size() * 4);
        } else {
            for (std::size_t i = 0; i < v.size(); ++i)
                v[i] = static_cast<float>(load_as_double(a.type(), a.data() + i * info(a.type()).bytes));
        }
        return v;
    }

    std::filesystem::path dir_;
    load_options opt_;
    config config_;
    io::checkpoint checkpoint_;
    std::map<std::string, cpu::array> weights_;
    std::size_t weight_bytes_ = 0, converted_bytes_ = 0;
    std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, bool>, step_graph> prefills_;
    std::map<std::tuple<std::int64_t, std::int64_t>, step_graph> decodes_;
};

}  // namespace scribe::runtime
