// scribe/runtime/loaded_model.hpp — what every model runtime shares: a model
// family's checkpoint folder loaded and checked (runtime/weight_files.hpp), its
// tensor-parallel ranks set up (threads of this process, or this process as one
// MPI rank), each rank's weights bound once (mmapped, converted once to the dtype
// asked for, or quantized), graphs built and bound per rank, and a step run on
// every rank at once. runtime::decoder (generation) and runtime::encoder
// (classification, embeddings) are made of it; neither copies the loader.
//
// A family (models/<family>.hpp) supplies: `config` (with load(), n_layer,
// n_positions), name, prefix, weights(config, degree), ignored_tensor(name),
// check_tp(config, degree), cache_shapes(config, batch, capacity, degree) (none
// for an encoder) and build<Dtype>(graph, config, shape).
//
// Pre-sharded folders (save_sharded): model.tp<N>-rank<R>.safetensors, one file
// per rank, each holding that rank's part of every weight under its Hugging Face
// name and in the dims the model reads it as (c_attn as [hidden, qkv, heads / N,
// head_dim]), with __metadata__ scribe.tp_degree and scribe.rank; a q8 or q4
// model's files hold its matrices already quantized (scribe.weights "q8"/"q4";
// runtime/weight_files.hpp), and load borrowing them from the mapping, with
// nothing to convert.
//
// Compiled artifacts (runtime/artifact.hpp): a folder with artifact.json is
// loaded as it was compiled (load_options must ask for its degree and dtype): its
// rank files and its packs (the weights as the kernels read them) are read in
// place from their maps, with nothing converted or packed; the rows decode
// streams are copied into 2 MiB pages when the decode graph is first built
// (unless keep_mapped).
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
#include "artifact.hpp"
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

// The most inputs one step runs (a decode graph writes each row of the KV cache
// with its own update, so its size grows with the batch).
inline constexpr std::int64_t max_batch = 1024;

template <class Family>
class loaded_model {
public:
    using config = typename Family::config;

    // `what` names the runtime in errors ("decoder", "encoder").
    loaded_model(const std::filesystem::path& dir, load_options opt, const char* what)
        : dir_(dir), opt_(std::move(opt)), config_(config::load(dir / "config.json")), what_(what) {
        if (opt_.type != dtype::f32 && opt_.type != dtype::f16 && opt_.type != dtype::bf16)
            throw error(what_ + ": the model runs in f32, f16 or bf16, not " + std::string(name(opt_.type)));
        if (opt_.weights != models::weight_format::plain && opt_.type != dtype::f32)
            throw error(what_ + ": " + std::string(name(opt_.weights)) + " weights run with f32 activations, not " + std::string(name(opt_.type)));
        if (is_artifact(dir_)) open_artifact();
        set_up_ranks();
        load_weights();
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
    // The compiled artifact this model was loaded from, if it was.
    const std::optional<artifact>& compiled() const { return artifact_; }
    // Bytes of weights packed for the kernels in this process (each weight once,
    // shared by every graph), and bytes of packs read from an artifact instead.
    std::size_t packed_bytes() const {
        std::size_t n = 0;
        for (const auto& r : ranks_) n += r.packs->made_bytes();
        return n;
    }
    std::size_t borrowed_pack_bytes() const {
        std::size_t n = 0;
        for (const auto& r : ranks_) n += r.packs->borrowed_bytes();
        return n;
    }
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

    // Writes the packs this process's ranks made (for the graphs built so far) as
    // an artifact's pack files (runtime/artifact.hpp).
    void save_packs(const std::filesystem::path& out) const {
        std::filesystem::create_directories(out);
        for (const auto& r : ranks_) {
            const auto packs = r.packs->packs();
            // Panels first (their sizes are multiples of 64 bytes, so each starts
            // 64-byte aligned), then rows of 4-byte and of 2-byte elements.
            std::vector<io::tensor_to_write> tensors;
            for (int pass = 0; pass < 3; ++pass)
                for (const auto& [key, p] : packs) {
                    const auto bytes = cpu::kernels::packed_bytes(*p);
                    const std::span<const unsigned char> b{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()};
                    if (p->transposed) {
                        if (pass == 1 + (info(p->transposed->type()).bytes < 4))
                            tensors.push_back({key, p->transposed->type(), {p->transposed->dims()[0].extent, p->transposed->dims()[1].extent}, b});
                    } else if (pass == 0 && (p->pairs.rows() || p->f16.rows())) {
                        tensors.push_back({key, dtype::u32, {static_cast<std::int64_t>(bytes.size() / 4)}, b});
                    } else if (pass == 0 && p->f32.rows()) {
                        tensors.push_back({key, dtype::f32, {static_cast<std::int64_t>(bytes.size() / 4)}, b});
                    }
                }
            io::write_safetensors(pack_file(out, opt_.tp, r.rank), tensors,
                                  {{"format", "scribe-packs"}, {"scribe.machine", machine_key()}, {"scribe.tp_degree", std::to_string(opt_.tp)},
                                   {"scribe.rank", std::to_string(r.rank)}},
                                  64);
        }
    }

protected:
    // One graph (every rank runs the same), and an executor per rank of this process.
    struct step_graph {
        std::unique_ptr<graph> g;
        std::vector<std::unique_ptr<cpu::executor>> execs;
        std::vector<std::string> caches;  // the parameters outputs 1.. update in place (a KV cache), by name
    };
    struct rank_state {
        int rank = 0;
        cpu::communicator* comm = nullptr;
        std::map<std::string, cpu::array> weights;
        cpu::resident_weights resident{};  // the weights copied out of the files' maps
        // The weights packed for the kernels, shared by every graph's executor (or
        // borrowed from an artifact's pack file, kept mapped here).
        std::unique_ptr<cpu::weight_packs> packs = std::make_unique<cpu::weight_packs>();
        std::unique_ptr<io::safetensors> saved_packs{};
    };
    static rank_state new_rank(int rank, cpu::communicator* comm) {
        rank_state r;
        r.rank = rank;
        r.comm = comm;
        return r;
    }


    // The buckets asked for (load_options::buckets), or `defaults`: each checked
    // against the model's positions, sorted, without repeats.
    void set_buckets(const std::vector<std::int64_t>& defaults) {
        if (opt_.buckets.empty()) opt_.buckets = defaults;
        for (auto b : opt_.buckets)
            if (b <= 0 || b > config_.n_positions)
                throw error(what_ + ": bucket " + std::to_string(b) + " must be between 1 and the model's " +
                            std::to_string(config_.n_positions) + " positions");
        std::sort(opt_.buckets.begin(), opt_.buckets.end());
        opt_.buckets.erase(std::unique(opt_.buckets.begin(), opt_.buckets.end()), opt_.buckets.end());
    }

    void set_up_ranks() {
        const auto tp = opt_.tp;
        if (tp < 1) throw error(what_ + ": the tensor-parallel degree must be at least 1, got " + std::to_string(tp));
        Family::check_tp(config_, tp);
        if (opt_.comm) {
            if (opt_.comm->size() != tp)
                throw error(what_ + ": tensor-parallel degree " + std::to_string(tp) + " but the communicator has " +
                            std::to_string(opt_.comm->size()) + " ranks (mpirun -np " + std::to_string(opt_.comm->size()) +
                            " needs --tp " + std::to_string(opt_.comm->size()) + ")");
            opt_.comm->set_timeout(opt_.collective_timeout);
            ranks_.push_back(new_rank(opt_.comm->rank(), opt_.comm));
        } else if (tp > 1) {
            group_ = std::make_unique<cpu::thread_group>(static_cast<int>(tp));
            group_->set_timeout(opt_.collective_timeout);
            rank_threads_ = std::make_unique<cpu::thread_pool>(static_cast<unsigned>(tp));
            for (int r = 0; r < static_cast<int>(tp); ++r) ranks_.push_back(new_rank(r, &(*group_)[r]));
        } else {
            ranks_.push_back(new_rank(0, nullptr));
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
    // last_run_seconds() is then the time from the inputs' hand-over to the last
    // rank's outputs.
    template <class Inputs>
    std::vector<std::vector<cpu::array>> run(step_graph& s, Inputs&& inputs) {
        std::vector<std::vector<cpu::array>> outs(ranks_.size());
        if (ranks_.size() == 1) {
            auto in = inputs(std::size_t{0});
            const auto t0 = std::chrono::steady_clock::now();
            outs[0] = s.execs[0]->run_donating(std::move(in));
            last_run_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            return outs;
        }
        std::vector<cpu::named_arrays> in(ranks_.size());
        for (std::size_t k = 0; k < ranks_.size(); ++k) in[k] = inputs(k);
        const auto t0 = std::chrono::steady_clock::now();
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
        last_run_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (first.load() >= 0) std::rethrow_exception(errors[static_cast<std::size_t>(first.load())]);
        return outs;
    }
    // The graph time of the last run(): the ranks' executors, not the runtime's work around them.
    double last_run_seconds() const { return last_run_seconds_; }

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
            // (An artifact's weights stay mapped: decode reads its packs' rows.)
            if (!opt_.keep_mapped && !artifact_) keep = [&r = ranks_[k]](cpu::array a) { return r.resident.keep(std::move(a)); };
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
        if (!opt_.keep_mapped && !artifact_) files_.reset();  // nothing reads the maps any more
        if (artifact_) open_packs();
    }

    // Reads and checks an artifact's artifact.json (runtime/artifact.hpp): its
    // family, key and options must be this model's and these.
    void open_artifact() {
        auto a = artifact::read(dir_);
        if (a.family != Family::name)
            throw error(io::shown_path(dir_ / artifact_file) + ": compiled for a " + io::printable(a.family) + " model, but config.json is " +
                        Family::name + "'s; compile the model again: " + a.recompile(dir_));
        const auto config_path = dir_ / "config.json";
        a.check_key(dir_, io::read_json(config_path, io::config_file_limit, "the config"), Family::weights(config_, a.options.tp));
        const auto& o = a.options;
        if (o.tp != opt_.tp || o.type != opt_.type || o.weights != opt_.weights) {
            const artifact_options asked{.tp = opt_.tp, .type = opt_.type, .weights = opt_.weights};
            throw error(what_ + ": " + io::shown_path(dir_) + " is compiled for --tp " + std::to_string(o.tp) + " --dtype " + o.dtype_name() +
                        ", not --tp " + std::to_string(opt_.tp) + " --dtype " + asked.dtype_name() +
                        ": run it with those (load_options tp, type and weights; `scribe generate` takes them from the artifact), or "
                        "compile it for these");
        }
        if (opt_.buckets.empty()) opt_.buckets = o.buckets;
        artifact_ = std::move(a);
    }

    // Offers each rank's saved packs to its weight_packs, mapped: a pack is
    // checked against the form a graph asks for when first used. Decode's rows
    // are then copied into 2 MiB pages, unless keep_mapped.
    void open_packs() {
        for (auto& r : ranks_) {
            if (!opt_.keep_mapped) r.packs->keep_rows_with([&r](cpu::array a) { return r.resident.keep(std::move(a)); });
            const auto path = pack_file(dir_, opt_.tp, r.rank);
            std::error_code ec;
            if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec)))
                throw error(io::shown_path(path) + " is missing (rank " + std::to_string(r.rank) +
                            "'s packs): the artifact is incomplete; compile the model again: " + artifact_->recompile(dir_));
            r.saved_packs = std::make_unique<io::safetensors>(path);
            const auto& meta = r.saved_packs->metadata();
            auto says = [&](const char* key, const std::string& want) {
                const auto it = meta.find(key);
                return it != meta.end() && it->second == want;
            };
            if (!says("format", "scribe-packs") || !says("scribe.machine", machine_key()) || !says("scribe.tp_degree", std::to_string(opt_.tp)) ||
                !says("scribe.rank", std::to_string(r.rank)))
                throw error(io::shown_path(path) + ": not the packs of rank " + std::to_string(r.rank) + " of " + std::to_string(opt_.tp) +
                            " for this CPU's kernels (its __metadata__ says otherwise); compile the model again: " + artifact_->recompile(dir_));
            for (const auto& e : r.saved_packs->tensors()) {
                const auto b = r.saved_packs->bytes(e.name);
                r.packs->add_saved(e.name, {reinterpret_cast<const std::byte*>(b.data()), b.size()},
                                   io::shown_path(path) + ": pack " + scribe::detail::ticked(io::printable(e.name, 256)));
            }
        }
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
        const auto params = s.g->parameters();
        for (const auto& a : s.g->aliases())
            if (a.output >= 1) {
                if (s.caches.size() < a.output) s.caches.resize(a.output);
                s.caches[a.output - 1] = (*s.g)[params[static_cast<std::size_t>(a.parameter_number)]].label;
            }
        for (std::size_t k = 0; k < ranks_.size(); ++k) {
            s.execs.push_back(std::make_unique<cpu::executor>(
                *s.g, cpu::options{.threads = threads, .check_finite = opt_.check_finite, .comm = ranks_[k].comm, .packs = ranks_[k].packs.get()}));
            bind_weights(s, k);
        }
        return s;
    }

    static std::vector<float> as_floats(const cpu::array& a) {
        std::vector<float> v(static_cast<std::size_t>(a.size()));
        const auto n = static_cast<std::int64_t>(v.size());
        if (a.type() == dtype::f32) {
            std::memcpy(v.data(), a.data(), v.size() * 4);
        } else if (a.type() == dtype::f16) {  // a 16-bit model's logits, every decode step: widened by vectors
            cpu::simd::widen(reinterpret_cast<const half*>(a.data()), v.data(), n);
        } else if (a.type() == dtype::bf16) {
            cpu::simd::widen(reinterpret_cast<const bfloat16*>(a.data()), v.data(), n);
        } else {
            for (std::size_t i = 0; i < v.size(); ++i)
                v[i] = static_cast<float>(load_as_double(a.type(), a.data() + i * info(a.type()).bytes));
        }
        return v;
    }

    double last_run_seconds_ = 0;
    std::filesystem::path dir_;
    load_options opt_;
    config config_;
    // The checkpoint or this process's ranks' files, mmapped: kept while weights
    // borrow from them (keep_mapped), else closed once the weights are copied.
    std::optional<weight_files<Family>> files_;
    bool presharded_ = false;
    std::optional<artifact> artifact_;  // compiled()
    std::unique_ptr<cpu::thread_group> group_;  // ranks as threads: their exchanges
    std::unique_ptr<cpu::thread_pool> rank_threads_;  // and the threads they run on
    std::vector<rank_state> ranks_;             // the ranks this process runs
    std::size_t weight_bytes_ = 0, converted_bytes_ = 0;
    std::string what_;
};

}  // namespace scribe::runtime
