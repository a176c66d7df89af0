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
// Tensor parallelism (load_options::tp = N): every rank runs the same graphs on
// its shards of the weights and its heads of the KV cache. Without a
// communicator the N ranks are threads of this process (cpu::thread_group);
// with one (MPI: parallel/mpi.hpp) this process is one rank. Each rank's weights
// are cut from the unsharded checkpoint (borrowed where contiguous, its part
// copied otherwise: parallel/weights.hpp), or read from a pre-sharded folder
// that save_sharded() wrote: model.tp<N>-rank<R>.safetensors, one file per rank,
// each holding that rank's part of every weight under its Hugging Face name and
// in the dims the model reads it as (c_attn as [hidden, qkv, heads / N, head_dim]),
// with __metadata__ scribe.tp_degree and scribe.rank; a q8 or q4 model's files hold
// its matrices already quantized (scribe.weights "q8"/"q4"; runtime/weight_files.hpp), and
// load borrowing them from the mapping, with nothing to convert.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <thread>

#include <unistd.h>

#include "../cpu.hpp"
#include "../cpu/quantized.hpp"
#include "../io/safetensors.hpp"
#include "../parallel/weights.hpp"
#include "sampling.hpp"
#include "weight_files.hpp"

namespace scribe::runtime {

struct load_options {
    dtype type = dtype::f32;  // the dtype the model runs in: f32, f16 or bf16
    // How the matrices are held: as `type`, or (q8 or q4, with type f32) quantized
    // at load into 8-bit or 4-bit blocks of 32 with an f16 scale each
    // (ops/quantize.hpp); vectors and matrices whose contracted extent is not a
    // multiple of 32 stay f32.
    models::weight_format weights = models::weight_format::plain;
    unsigned threads = 0;     // CPU threads; 0: one per hardware thread
    // Prompt lengths the prefill graphs are built for (a prompt is right-padded to
    // the smallest that holds it); empty: powers of two from 16, and the model's
    // positions.
    std::vector<std::int64_t> buckets{};
    // Called while weights load: bytes done so far, bytes in all.
    std::function<void(std::size_t, std::size_t)> progress{};
    // Tensor-parallel degree. Without comm, that many ranks run as threads here
    // (`threads` shared among them); with comm (of tp ranks), this process is rank
    // comm->rank() and loads that rank's part of the weights only.
    std::int64_t tp = 1;
    cpu::communicator* comm = nullptr;
    // How long a rank waits for the others at one exchange before it fails,
    // naming the ranks that did not arrive (cpu::communicator::set_timeout; set
    // on comm too); zero or less: forever.
    std::chrono::milliseconds collective_timeout = cpu::communicator::default_timeout;
    // Bytes one rank may use for its weights and KV cache; 0: no limit. A load or
    // a generate() that would need more is refused, with the numbers.
    std::size_t memory_budget = 0;
    // Debugging non-finite logits: check every value as the graphs compute it and
    // name the first node (and its weights) that makes a NaN or an infinity. Slow.
    bool check_finite = false;
    // Read the weights in place from the files' memory maps (zero copies: a
    // faster load, and the page cache shared with other processes) instead of
    // copying those stored as they run into 2 MiB pages (cpu::resident_weights:
    // decode reads them about 8% faster). Converted or quantized weights are
    // copies either way.
    bool keep_mapped = false;
};

struct generate_options {
    std::int64_t max_new_tokens = 32;
    sampling sample{};
    bool stop_at_eos = true;
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
};

namespace detail {

// The machine's memory in bytes (0 when unknown).
inline std::uint64_t physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
}

inline std::string mib(std::size_t bytes) {
    char b[64];
    std::snprintf(b, sizeof b, "%.1f MiB (%zu bytes)", static_cast<double>(bytes) / (1 << 20), bytes);
    return b;
}

}  // namespace detail

// Refuses a run whose per-rank weights and KV cache (batch x capacity; the
// weights alone when batch is 0) exceed `budget` bytes per rank (0: none), or
// whose `ranks_here` ranks in this process need more than the machine's memory:
// said with the numbers before anything is allocated, not half-way through.
inline void check_memory(const parallel::memory_plan& p, std::int64_t batch, std::int64_t capacity, dtype type,
                         std::size_t ranks_here, std::size_t budget) {
    const auto need = batch ? p.total() : p.weights;
    std::string what = "weights " + detail::mib(p.weights);
    if (batch)
        what += " + KV cache " + detail::mib(p.kv_cache) + " (batch " + std::to_string(batch) + ", " + std::to_string(capacity) +
                " positions)";
    what += " in " + std::string(name(type));
    if (budget && need > budget)
        throw error("memory: each of the " + std::to_string(p.degree) + " rank(s) would need " + detail::mib(need) + " (" + what +
                    ") but the budget is " + detail::mib(budget) +
                    " per rank; use a larger tensor-parallel degree, a smaller batch or fewer new tokens");
    const auto here = checked::mul(static_cast<std::uint64_t>(need), static_cast<std::uint64_t>(ranks_here), "the bytes this process's ranks need");
    if (const auto machine = detail::physical_memory(); !budget && machine && here > machine)
        throw error("memory: the " + std::to_string(ranks_here) + " rank(s) of this process would need " +
                    detail::mib(static_cast<std::size_t>(here)) + " (each: " + what + "), more than this machine's " +
                    detail::mib(static_cast<std::size_t>(machine)) + "; use a smaller batch or model, more processes, or --memory-budget");
}

// The most sequences one step runs (the decode graph writes each row of the KV
// cache with its own update, so its size grows with the batch).
inline constexpr std::int64_t max_batch = 1024;

template <class Family>
class decoder {
public:
    using config = typename Family::config;

    decoder(const std::filesystem::path& dir, load_options opt = {})
        : dir_(dir), opt_(std::move(opt)), config_(config::load(dir / "config.json")) {
        if (opt_.type != dtype::f32 && opt_.type != dtype::f16 && opt_.type != dtype::bf16)
            throw error("decoder: the model runs in f32, f16 or bf16, not " + std::string(name(opt_.type)));
        if (opt_.weights != models::weight_format::plain && opt_.type != dtype::f32)
            throw error("decoder: " + std::string(name(opt_.weights)) + " weights run with f32 activations, not " + std::string(name(opt_.type)));
        set_up_ranks();
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
    models::weight_format weight_format() const { return opt_.weights; }
    const std::vector<std::int64_t>& buckets() const { return opt_.buckets; }
    // Bytes of weights this process holds (all its ranks), and of those, converted.
    std::size_t weight_bytes() const { return weight_bytes_; }
    std::size_t converted_bytes() const { return converted_bytes_; }
    // Bytes of weights copied out of the files' memory maps (0 with keep_mapped).
    std::size_t resident_bytes() const {
        std::size_t n = 0;
        for (const auto& r : ranks_) n += r.resident.bytes();
        return n;
    }
    const std::filesystem::path& folder() const { return dir_; }
    std::int64_t tp() const { return opt_.tp; }
    // The first rank this process runs (0 unless it is one rank of an MPI run).
    int rank() const { return ranks_.front().rank; }
    bool presharded() const { return presharded_; }

    // What one rank needs for its weights and a KV cache of `capacity` positions.
    parallel::memory_plan memory(std::int64_t batch, std::int64_t capacity) const {
        return parallel::plan(Family::weights(config_, opt_.tp), Family::cache_shapes(config_, batch, capacity, opt_.tp), opt_.type,
                              opt_.tp, opt_.weights);
    }

    // Writes this process's ranks' weights as a pre-sharded folder's rank files
    // (see the top of this file), as they are held: in the model's dtype, or q8
    // or q4 (each matrix's q and scales, the rest f32). The caller copies
    // config.json and the tokenizer.
    void save_sharded(const std::filesystem::path& out) const {
        const bool q8 = opt_.weights != models::weight_format::plain;
        std::filesystem::create_directories(out);
        for (const auto& r : ranks_) {
            std::vector<io::tensor_to_write> tensors;
            auto add = [&](const std::string& name) {
                const auto& a = r.weights.at(name);
                std::vector<std::int64_t> extents;
                for (const auto& d : a.dims()) extents.push_back(d.extent);
                tensors.push_back({name, a.type(), extents, {a.data(), a.bytes()}});
            };
            for (const auto& s : Family::weights(config_, opt_.tp)) {
                add(s.name);
                if (q8 && r.weights.contains(q8::scale_name(s.name))) add(q8::scale_name(s.name));
            }
            // Wider elements first, so each tensor starts aligned to its own (the
            // data section starts at a multiple of 8; safetensors leaves no gaps).
            // (Stable by hand: libstdc++'s stable_sort trips clang's -Wdeprecated.)
            std::vector<io::tensor_to_write> by_width;
            for (int bytes : {8, 4, 2, 1})
                for (const auto& t : tensors)
                    if (info(t.type).bytes == bytes) by_width.push_back(t);
            tensors = std::move(by_width);
            std::map<std::string, std::string> meta{{"format", "pt"}, {"scribe.tp_degree", std::to_string(opt_.tp)},
                                                    {"scribe.rank", std::to_string(r.rank)}};
            if (q8) meta[detail::weights_key] = std::string(name(opt_.weights));
            io::write_safetensors(rank_file(out, opt_.tp, r.rank), tensors, meta);
        }
    }

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
        // The cache holds the longest prompt and its new tokens (rounded up to 32,
        // within the model's positions) and at least the bucket prefill writes.
        const auto needed = std::min(config_.n_positions, (longest + o.max_new_tokens + 31) / 32 * 32);
        out.capacity = std::max(out.bucket, needed);
        check_budget(batch, out.capacity);
        out.tokens.assign(prompts.size(), {});

        std::mt19937_64 rng(o.sample.seed);
        std::vector<bool> done(prompts.size(), false);
        std::vector<std::int32_t> last(prompts.size());
        bool stop = false;
        const auto choosable = static_cast<std::size_t>(o.vocab_limit ? o.vocab_limit : config_.vocab_size);
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
                if (o.stop_at_eos && config_.eos_token_id && t == *config_.eos_token_id) done[b] = true;
                if (o.on_token && !o.on_token(b, t)) stop = true;
            }
        };

        auto& pre = prefill(out.bucket, out.capacity, batch, true);  // built on first use, not timed
        auto& dec = decode(out.capacity, batch);
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
    // One graph (every rank runs the same), and an executor per rank of this process.
    struct step_graph {
        std::unique_ptr<graph> g;
        std::vector<std::unique_ptr<cpu::executor>> execs;
        std::vector<std::string> caches;  // the cache parameters' names, in output order
    };
    struct rank_state {
        int rank = 0;
        cpu::communicator* comm = nullptr;
        std::map<std::string, cpu::array> weights;
        cpu::resident_weights resident{};  // the weights copied out of the files' maps
    };

    void set_up_ranks() {
        const auto tp = opt_.tp;
        if (tp < 1) throw error("decoder: the tensor-parallel degree must be at least 1, got " + std::to_string(tp));
        Family::check_tp(config_, tp);
        if (opt_.comm) {
            if (opt_.comm->size() != tp)
                throw error("decoder: tensor-parallel degree " + std::to_string(tp) + " but the communicator has " +
                            std::to_string(opt_.comm->size()) + " ranks (mpirun -np " + std::to_string(opt_.comm->size()) +
                            " needs --tp " + std::to_string(opt_.comm->size()) + ")");
            opt_.comm->set_timeout(opt_.collective_timeout);
            ranks_.push_back({opt_.comm->rank(), opt_.comm, {}, {}});
        } else if (tp > 1) {
            group_ = std::make_unique<cpu::thread_group>(static_cast<int>(tp));
            group_->set_timeout(opt_.collective_timeout);
            rank_threads_ = std::make_unique<cpu::thread_pool>(static_cast<unsigned>(tp));
            for (int r = 0; r < static_cast<int>(tp); ++r) ranks_.push_back({r, &(*group_)[r], {}, {}});
        } else {
            ranks_.push_back({0, nullptr, {}, {}});
        }
    }

    // Refuses a run whose memory plan does not fit (see check_memory), before
    // anything is allocated; batch 0: the weights alone.
    void check_budget(std::int64_t batch, std::int64_t capacity) const {
        check_memory(memory(std::max<std::int64_t>(batch, 1), std::max<std::int64_t>(capacity, 1)), batch, capacity, opt_.type,
                     ranks_.size(), opt_.memory_budget);
    }

    // Runs a step on every rank of this process (ranks as threads run at once);
    // inputs(k) gives local rank k's inputs. Returns each local rank's outputs. A
    // rank that fails stops the others (their exchanges throw) and its error is
    // the one raised.
    template <class Inputs>
    std::vector<std::vector<cpu::array>> run(step_graph& s, Inputs&& inputs) {
        std::vector<std::vector<cpu::array>> outs(ranks_.size());
        if (ranks_.size() == 1) {
            outs[0] = s.execs[0]->run_donating(inputs(std::size_t{0}));
            return outs;
        }
        std::vector<cpu::named_arrays> in(ranks_.size());
        for (std::size_t k = 0; k < ranks_.size(); ++k) in[k] = inputs(k);
        std::vector<std::exception_ptr> errors(ranks_.size());
        std::atomic<int> first{-1};
        auto body = [&](std::size_t k) {
            try {
                outs[k] = s.execs[k]->run_donating(std::move(in[k]));
            } catch (...) {
                errors[k] = std::current_exception();
                int none = -1;
                first.compare_exchange_strong(none, static_cast<int>(k));
                ranks_[k].comm->abort();
            }
        };
        rank_threads_->run([&](unsigned k) { body(k); });  // rank k on thread k; this thread is rank 0
        if (first.load() >= 0) std::rethrow_exception(errors[static_cast<std::size_t>(first.load())]);
        return outs;
    }

    // Logits with a NaN or an infinity (weights that hold them, or overflow) end
    // generation with an error rather than a silent, empty continuation.
    void check_finite_logits(std::span<const float> row, std::int64_t step, std::size_t sequence) const {
        for (std::size_t v = 0; v < row.size(); ++v)
            if (!std::isfinite(row[v]))
                throw error("generate: the logits of sequence " + std::to_string(sequence) + " at step " + std::to_string(step) +
                            (step == 0 ? " (prefill)" : " (decode)") + " are not finite (token " + std::to_string(v) + ": " +
                            std::to_string(row[v]) + "); the weights or the config make NaN or infinity" +
                            (opt_.check_finite ? "" : " (--check-finite names the first layer that does)"));
    }


    // Reads every weight the family lists for each rank of this process (from the
    // rank's file of a pre-sharded folder, or cut from the checkpoint), after
    // weight_files has checked them all.
    void load_weights() {
        std::vector<int> ranks;
        for (const auto& r : ranks_) ranks.push_back(r.rank);
        files_.emplace(dir_, config_, opt_.tp, ranks);
        const auto& files = *files_;
        presharded_ = files.presharded();
        if (files.blocks() != models::weight_format::plain && opt_.weights != files.blocks()) {
            const std::string held(name(files.blocks()));
            throw error(dir_.string() + ": the folder holds " + held + " weights (written by `scribe shard --dtype " + held + "`), so it runs in " +
                        held + " only: give --dtype " + held + " (load_options::weights = " + held + "), or shard the float checkpoint again for " +
                        (opt_.weights == models::weight_format::plain ? std::string(name(opt_.type)) : std::string(name(opt_.weights))));
        }
        check_budget(0, 0);
        for (std::size_t k = 0; k < ranks_.size(); ++k) {
            typename weight_files<Family>::keep_fn keep;
            if (!opt_.keep_mapped) keep = [&r = ranks_[k]](cpu::array a) { return r.resident.keep(std::move(a)); };
            auto arrays = files.arrays(k, opt_.type, opt_.progress, [&](std::size_t i, cpu::array a, cpu::named_arrays& out) {
                const auto& spec = files.specs()[i];
                const auto what = files.at(k, i).file->path().string() + ": weight `" + spec.name + "`";
                // Whether the model stores the weight in blocks is decided on the whole
                // weight, so every tensor-parallel degree computes with the same
                // values; a rank whose part of k is not whole blocks holds that part
                // read back as f32 (blocks quantized across the whole rows).
                const auto whole = q8::plan(spec.dims, spec.in, opt_.weights);
                const auto layout = whole ? q8::plan(a.dims(), spec.in, opt_.weights) : std::nullopt;
                if (whole && !layout && files.blocks() == models::weight_format::plain) {  // (a q8/q4 folder stores the part read back)
                    const auto read_back = cpu::round_trip_q8(files.whole_array(k, i, dtype::f32), *whole, what);
                    const auto part = parallel::shard(read_back, spec.split, opt_.tp, ranks_[k].rank);  // may borrow read_back
                    a = cpu::array::uninitialized(dtype::f32, part.dims());
                    std::memcpy(a.mutable_data(), part.data(), part.bytes());
                }
                if (!layout) {
                    if (files.stored_type(k, i) != opt_.type) converted_bytes_ += a.bytes();  // converted once, there
                    out.emplace_back(spec.name, std::move(a));
                    return;
                }
                // A matrix held in blocks: quantized here, one weight at a time.
                cpu::add_q8(out, spec.name, a, *layout, what);
                converted_bytes_ += out[out.size() - 2].second.bytes() + out.back().second.bytes();
            }, keep);
            for (auto& [name, a] : arrays) {
                weight_bytes_ += a.bytes();
                ranks_[k].weights[name] = std::move(a);
            }
        }
        if (!opt_.keep_mapped) files_.reset();  // nothing reads the maps any more
    }

    void bind_weights(step_graph& s, std::size_t k) {
        for (const auto& n : s.g->nodes()) {
            if (n.kind != op::parameter) continue;
            const auto it = ranks_[k].weights.find(n.label);
            if (it != ranks_[k].weights.end()) s.execs[k]->bind(n.parameter_number, it->second.view());
        }
    }
    template <class Build>
    step_graph make(const std::string& name, Build&& build) {
        step_graph s{std::make_unique<graph>(name), {}, {}};
        switch (opt_.type) {
            case dtype::f16: build.template operator()<f16>(*s.g); break;
            case dtype::bf16: build.template operator()<bf16>(*s.g); break;
            default: build.template operator()<f32>(*s.g); break;
        }
        // The threads are shared among this process's ranks; an MPI rank takes its
        // share of the machine's unless told.
        auto threads = opt_.threads;
        if (threads == 0 && opt_.tp > 1)
            threads = std::max(1u, std::thread::hardware_concurrency() / static_cast<unsigned>(opt_.tp));
        else if (ranks_.size() > 1)
            threads = std::max(1u, threads / static_cast<unsigned>(ranks_.size()));
        // Outputs 1... are the caches, each updating the parameter it is aliased to.
        s.caches.resize(s.g->outputs().size() - 1);
        const auto params = s.g->parameters();
        for (const auto& a : s.g->aliases())
            if (a.output >= 1) s.caches[a.output - 1] = (*s.g)[params[static_cast<std::size_t>(a.parameter_number)]].label;
        for (std::size_t k = 0; k < ranks_.size(); ++k) {
            s.execs.push_back(std::make_unique<cpu::executor>(
                *s.g, cpu::options{.threads = threads, .check_finite = opt_.check_finite, .comm = ranks_[k].comm}));
            bind_weights(s, k);
        }
        return s;
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

    step_graph& decode(std::int64_t capacity, std::int64_t batch) {
        const auto key = std::make_tuple(capacity, batch);
        auto it = decodes_.find(key);
        if (it == decodes_.end()) {
            const auto shape = typename Family::graph_shape{.batch = batch, .seq = 1, .capacity = capacity, .decode = true, .tp = opt_.tp,
                                                            .weights = opt_.weights};
            it = decodes_.emplace(key, make("decode", [&]<auto D>(graph& g) { Family::template build<D>(g, config_, shape); })).first;
        }
        return it->second;
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
    // The checkpoint or this process's ranks' files, mmapped: kept while weights
    // borrow from them (keep_mapped), else closed once the weights are copied.
    std::optional<weight_files<Family>> files_;
    bool presharded_ = false;
    std::unique_ptr<cpu::thread_group> group_;  // ranks as threads: their exchanges
    std::unique_ptr<cpu::thread_pool> rank_threads_;  // and the threads they run on
    std::vector<rank_state> ranks_;             // the ranks this process runs
    std::size_t weight_bytes_ = 0, converted_bytes_ = 0;
    std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, bool>, step_graph> prefills_;
    std::map<std::tuple<std::int64_t, std::int64_t>, step_graph> decodes_;
};

}  // namespace scribe::runtime
