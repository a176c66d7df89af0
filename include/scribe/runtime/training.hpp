// scribe/runtime/training.hpp — a whole training run of a decoder family, as
// `scribe train` runs it: the model from a Hugging Face folder (fine-tuning) or
// drawn from its config (train::initial_weights), the data packed into blocks
// (train::token_blocks), one compiled step per iteration (runtime::trainer: the
// forward, the backward and the optimizer in one graph), validation, and
// checkpoints that lose nothing.
//
//     runtime::training_options o{.batch = 16, .seq = 128, .steps = 1000, .out = "run"};
//     o.update = {...};  // the optimizer (train::update_options)
//     auto r = runtime::train_model<models::gpt2_family>({.dir = "models/demo-gpt2"}, blocks, o);
//
// Written under o.out:
//   checkpoint-<step>/  every --save-every steps, at the end and when stopped: a
//                       Hugging Face folder (runtime/save.hpp) in f32, plus
//                       optimizer.safetensors (the optimizer's state, step
//                       included) and trainer_state.json (the step, the options
//                       the batches depend on, the model's weight list). Made in a
//                       temporary folder and renamed: whole or absent.
//   model.safetensors, config.json, tokenizer files   the final model
//   log.jsonl           a line per step {"step", "loss", "lr", "grad_norm",
//                       "tokens_per_s", "seconds"} and per validation {"step",
//                       "val_loss", "val_perplexity"}
//   loss.svg            the loss curve (train/loss_curve.hpp)
//
// Data parallel (training_options::dp, or ::comm for ranks as MPI processes):
// every rank runs its own training_run over the same data, trains on its slice
// of each global batch (--batch blocks: rank r of N takes blocks r B/N to
// (r+1) B/N - 1 of it) and averages the gradients with the others
// (train::data_parallel), starting from rank 0's weights. Rank 0 alone writes
// the log, the loss curve, the checkpoints and the model; the ranks share the
// validation blocks. A stop signal seen by any rank stops all of them after the
// same step. As the global batch is the run's, a checkpoint resumes at any
// data-parallel degree that divides it.
//
// Tensor parallel (training_options::tp): every data-parallel rank is a group
// of tp ranks that each hold their shards of the weights (and of the
// optimizer's state), as the decoder's ranks do (parallel/layers.hpp); a run of
// R ranks is a (R / tp) x tp mesh, rank r being rank r % tp of data-parallel
// rank r / tp (parallel::mesh). Checkpoints and the model are written whole, in
// the Hugging Face layout, whatever the degrees: the first group's shards are
// gathered, and a resumed run cuts its own.
//
// What a step sees depends on the seed and the step's number only: the blocks
// (train::epoch_order), the dropout bits (key seed, micro-batch number), the
// learning rate (the schedule of optimizer.step). So a run resumed from a
// checkpoint (training_options::resume) computes the same losses as one that
// never stopped.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "../io/safetensors.hpp"
#include "../train/causal_lm.hpp"
#include "../train/data.hpp"
#include "../train/init.hpp"
#include "../train/loss_curve.hpp"
#include "../train/precision.hpp"
#include "../parallel/weights.hpp"
#include "decoder.hpp"
#include "save.hpp"
#include "trainer.hpp"
#include "weight_files.hpp"

namespace scribe::runtime {

struct step_report {
    std::int64_t step = 0, total = 0, epoch = 0;
    double loss = 0, grad_norm = 0, lr = 0;
    double tokens_per_s = 0;  // this step's
    double seconds = 0;       // since the run started (this process)
    double eta = 0;           // seconds left, at the recent pace
};
struct eval_report {
    std::int64_t step = 0;
    double loss = 0, perplexity = 0;
};
// What a run needs: the weights, their gradients and the optimizer's state (f32),
// and the step graph's intermediate values at their peak.
struct training_memory {
    std::size_t weights = 0, gradients = 0, optimizer = 0, activations = 0;
    std::size_t total() const { return weights + gradients + optimizer + activations; }
};

struct training_options {
    std::int64_t batch = 8, seq = 128;      // blocks per micro-batch, tokens per block
    std::int64_t steps = 0, epochs = 0;     // the run's length: steps, or epochs (neither: 1 epoch)
    train::update_options update{};         // the optimizer; its schedule's total is set to the run's steps
    std::uint64_t seed = 0;                 // initial weights, the order of the blocks, dropout
    unsigned threads = 0;                   // 0: every core (with dp: shared by the ranks)
    int dp = 1;                             // data-parallel ranks as threads of this process (train_model)
    int tp = 1;                             // tensor-parallel degree (with dp: dp x tp ranks as threads)
    cpu::communicator* comm = nullptr;      // or this process's rank of a parallel run (MPI): its size is dp x tp
    std::int64_t bucket_bytes = std::int64_t{25} << 20;  // the gradients all-reduced together
    // How long a rank waits for the others at one exchange before the run fails,
    // naming the ranks that did not arrive (cpu::communicator::set_timeout).
    std::chrono::milliseconds collective_timeout = cpu::communicator::default_timeout;
    std::int64_t eval_every = 0;            // validation every N steps (0: at the end only)
    std::int64_t save_every = 0;            // a checkpoint every N steps (0: at the end only)
    std::filesystem::path out;              // where everything is written
    std::filesystem::path resume;           // a checkpoint-<step> folder to continue from
    bool dropout = true;                    // the config's dropout
    dtype save_type = dtype::f32;           // the final model's (checkpoints are f32: resume is exact)
    train::precision precision = train::precision::f32;  // the run's arithmetic (train/precision.hpp)
    std::size_t memory_budget = 0;          // refuse a run that needs more bytes (0: the machine's memory)
    std::function<void(const step_report&)> on_step{};
    std::function<void(const eval_report&)> on_eval{};
    std::function<void(const std::filesystem::path&, std::int64_t)> on_save{};
    std::function<void(const std::string&)> on_note{};  // what the run says besides (the plan, resuming)
    const std::atomic<int>* stop = nullptr;  // nonzero (a signal's number): save a checkpoint and return
};

struct training_result {
    std::int64_t step = 0, total = 0;
    int stopped_by = 0;                     // the signal that stopped the run, or 0
    double train_loss = std::numeric_limits<double>::quiet_NaN();
    double val_loss = std::numeric_limits<double>::quiet_NaN();
    std::filesystem::path checkpoint;       // the last one written
    double seconds = 0;
};

// The model to train: a Hugging Face folder (config.json, the weights and the
// tokenizer), or a config to draw the weights from and the folder whose
// tokenizer files the checkpoints copy.
struct model_source {
    std::filesystem::path dir{};
    nlohmann::json config{};
    std::filesystem::path tokenizer{};
};

namespace detail {

inline std::string checkpoint_name(std::int64_t step) { return "checkpoint-" + std::to_string(step); }

inline nlohmann::json weight_list_json(const std::vector<models::weight_spec>& specs) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& s : specs) j.push_back({s.name, s.stored});
    return j;
}

}  // namespace detail

template <class Family>
class training_run {
public:
    using config = typename Family::config;

    // `ranks_here`: the ranks of the run this process holds (train_model's
    // threads), for the memory check.
    training_run(const model_source& m, const train::token_blocks& data, training_options o, int ranks_here = 1)
        : m_(m), data_(data), o_(std::move(o)), ranks_here_(ranks_here) {
        namespace fs = std::filesystem;
        if (o_.out.empty()) throw error("train: no output folder (--out)");
        config_json_ = m_.dir.empty() ? m_.config : models::read_config_json(m_.dir / "config.json");
        const auto config_name = m_.dir.empty() ? std::string("the config") : (m_.dir / "config.json").string();
        c_ = config::parse(config_json_, config_name);
        tokenizer_dir_ = m_.dir.empty() ? m_.tokenizer : m_.dir;
        specs_ = Family::weights(c_);
        if (o_.tp < 1 || o_.tp > cpu::thread_group::max_ranks)
            throw error("--tp " + std::to_string(o_.tp) + ": tensor-parallel degrees are 1 to " + std::to_string(cpu::thread_group::max_ranks));
        tp_ = o_.tp;
        shard_specs_ = Family::weights(c_, tp_);
        if (data_.seq() != o_.seq)
            throw error("train: the data is in blocks of " + std::to_string(data_.seq()) + " tokens, the run's --seq is " +
                        std::to_string(o_.seq));
        if (o_.seq > c_.n_positions)
            throw error("--seq " + std::to_string(o_.seq) + " is longer than the model's " + std::to_string(c_.n_positions) +
                        " positions (" + config_name + ")");
        if (o_.batch < 1) throw error("--batch must be at least 1");
        // Without a communicator: the plan of a run whose ranks train_model makes.
        world_ = o_.comm ? o_.comm->size() : o_.dp * o_.tp;
        if (o_.comm) o_.comm->set_timeout(o_.collective_timeout);
        rank_ = o_.comm ? o_.comm->rank() : 0;
        if (world_ % tp_ != 0)
            throw error("--tp " + std::to_string(tp_) + " does not divide the run's " + std::to_string(world_) +
                        " ranks (data-parallel x tensor-parallel): under mpirun, give -np a multiple of --tp");
        ranks_ = world_ / tp_;
        copy_ = rank_ / tp_;
        tp_rank_ = rank_ % tp_;
        if (o_.batch % ranks_ != 0)
            throw error("--batch " + std::to_string(o_.batch) + " (the global batch) does not split evenly over " + std::to_string(ranks_) +
                        " data-parallel ranks: give a multiple of " + std::to_string(ranks_));
        o_.update.dp.replicas = ranks_;
        if (tp_ > 1 && ranks_ > 1) o_.update.dp.groups = mesh().across().groups;
        o_.update.dp.bucket_bytes = o_.bucket_bytes;
        if (o_.steps && o_.epochs) throw error("give --steps or --epochs, not both");
        const auto per_step = o_.batch * o_.update.accumulate;
        steps_per_epoch_ = data_.train_blocks() / per_step;
        if (steps_per_epoch_ < 1)
            throw error("the training data has " + std::to_string(data_.train_blocks()) + " blocks of " + std::to_string(o_.seq) +
                        " tokens, fewer than one step takes (--batch " + std::to_string(o_.batch) + " x --accumulate " +
                        std::to_string(o_.update.accumulate) + " = " + std::to_string(per_step) +
                        "): give more text, or a smaller --batch, --accumulate or --seq");
        total_ = o_.steps ? o_.steps : std::max<std::int64_t>(1, o_.epochs) * steps_per_epoch_;
        o_.update.lr.total = total_;
        o_.update.lr.check();
        if (o_.update.lr.warmup > total_)
            throw error("--warmup " + std::to_string(o_.update.lr.warmup) + " is longer than the run's " + std::to_string(total_) + " steps");
        o_.update.decays = train::decays_matrices(specs_);
        train::apply(o_.precision, o_.update, o_.seed);
    }

    // The bytes the run needs, from the step graph's plan (cpu::executor::planned_peak_bytes).
    training_memory memory() {
        ensure_trainer();
        training_memory m;
        for (const auto& [_, a] : trainer_->weights()) {
            m.weights += a.bytes();
            m.gradients += static_cast<std::size_t>(a.size()) * 4;  // f32 in every mode
        }
        for (const auto& [_, a] : trainer_->state()) m.optimizer += a.bytes();
        m.activations = trainer_->planned_peak_bytes();
        return m;
    }

    training_result run() {
        namespace fs = std::filesystem;
        using clock = std::chrono::steady_clock;
        const auto started = clock::now();
        ensure_trainer();
        check_budget();
        check_same_data();
        if (lead()) {
            fs::create_directories(o_.out);
            start_log();
        }
        eval_ = std::make_unique<eval_graph>(*this);
        training_result r;
        r.step = trainer_->steps();
        r.total = total_;
        double pace = 0;  // seconds a step, recent
        const auto mine = o_.batch / ranks_;  // this rank's blocks of each micro-batch
        std::vector<std::int32_t> ids(static_cast<std::size_t>(mine * o_.seq));
        const std::vector<std::int32_t> lengths(static_cast<std::size_t>(mine), static_cast<std::int32_t>(o_.seq));
        std::vector<std::uint32_t> keys(2 * static_cast<std::size_t>(o_.update.accumulate));
        std::vector<std::vector<std::int32_t>> micro_ids(static_cast<std::size_t>(o_.update.accumulate), ids);
        for (auto step = trainer_->steps(); step < total_; step = trainer_->steps()) {
            if (const int sig = stop_requested()) {
                r.stopped_by = sig;
                break;
            }
            const auto t0 = clock::now();
            std::vector<trainer::batch> micro;
            for (std::int64_t j = 0; j < o_.update.accumulate; ++j) {
                auto& buf = micro_ids[static_cast<std::size_t>(j)];
                fill(step, j, buf);
                const auto global = static_cast<std::uint64_t>(step * o_.update.accumulate + j);
                // Each data-parallel rank's dropout bits its own (rank 0's as a single
                // process's); the ranks of a tensor-parallel group share theirs.
                keys[2 * static_cast<std::size_t>(j)] =
                    static_cast<std::uint32_t>(o_.seed) ^ 0x6a09e667u ^ (static_cast<std::uint32_t>(copy_) * 0x9e3779b9u);
                keys[2 * static_cast<std::size_t>(j) + 1] = static_cast<std::uint32_t>(global);
                trainer::batch b;
                b.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", mine}, {"seq", o_.seq}}, buf.data(), buf.size() * 4));
                b.emplace_back("lengths", cpu::array::borrow(dtype::s32, {{"batch", mine}}, lengths.data(), lengths.size() * 4));
                if (dropout_) {
                    b.emplace_back("dropout.key0", cpu::array::borrow(dtype::u32, {}, &keys[2 * static_cast<std::size_t>(j)], 4));
                    b.emplace_back("dropout.key1", cpu::array::borrow(dtype::u32, {}, &keys[2 * static_cast<std::size_t>(j) + 1], 4));
                }
                micro.push_back(std::move(b));
            }
            const auto s = trainer_->step(micro);
            const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
            if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm))
                throw error("step " + std::to_string(s.step) + ": the loss is " + checked::shown(s.loss) + " (gradient norm " +
                            checked::shown(s.grad_norm) + "); training stopped there. " +
                            (last_checkpoint_.empty() ? std::string("No checkpoint was written before it")
                                                      : "The last good checkpoint is " + last_checkpoint_.string()) +
                            "; a lower --lr, a --warmup or --clip usually helps");
            pace = pace == 0 ? seconds : 0.9 * pace + 0.1 * seconds;
            step_report rep{.step = s.step, .total = total_, .epoch = (s.step - 1) / steps_per_epoch_, .loss = s.loss,
                            .grad_norm = s.grad_norm, .lr = s.lr,
                            .tokens_per_s = static_cast<double>(o_.batch * o_.seq * o_.update.accumulate) / seconds,
                            .seconds = std::chrono::duration<double>(clock::now() - started).count(),
                            .eta = pace * static_cast<double>(total_ - s.step)};
            log({{"step", s.step}, {"loss", s.loss}, {"lr", s.lr}, {"grad_norm", s.grad_norm}, {"tokens_per_s", rep.tokens_per_s},
                 {"seconds", rep.seconds}});
            train_curve_.push_back({s.step, s.loss});
            r.train_loss = s.loss;
            r.step = s.step;
            if (o_.on_step && lead()) o_.on_step(rep);
            const bool last = s.step == total_;
            if ((o_.eval_every && s.step % o_.eval_every == 0) || last) r.val_loss = evaluate(s.step);
            if ((o_.save_every && s.step % o_.save_every == 0) || last) r.checkpoint = save(s.step);
        }
        if (r.stopped_by && r.step < total_) r.checkpoint = save(r.step);
        if (!r.stopped_by || r.step == total_) save_final();
        if (lead()) write_curve();
        r.seconds = std::chrono::duration<double>(clock::now() - started).count();
        return r;
    }

    std::int64_t total_steps() const { return total_; }
    std::int64_t steps_per_epoch() const { return steps_per_epoch_; }
    // The step the run starts at: 0, or the --resume checkpoint's (read from its
    // trainer_state.json; run() checks the rest of the checkpoint).
    std::int64_t start_step() const {
        if (o_.resume.empty()) return 0;
        const auto file = o_.resume / "trainer_state.json";
        const auto state = io::read_json(file, io::config_file_limit, "a checkpoint's trainer state");
        if (!state.is_object() || !state.contains("step")) throw error(file.string() + ": missing field `step`");
        if (!state["step"].is_number_integer() || state["step"].get<std::int64_t>() < 0)
            throw error(file.string() + ": `step` must be a step number, got " + io::shown(state["step"]));
        return state["step"].get<std::int64_t>();
    }
    const config& model_config() const { return c_; }
    int rank() const { return rank_; }

private:
    // Rank 0 writes the files and reports; the others compute only.
    bool lead() const { return rank_ == 0; }

    // A stop signal's number, once any rank has seen one (all ranks agree, so
    // they stop after the same step); 0 to go on.
    int stop_requested() {
        double seen = o_.stop ? static_cast<double>(o_.stop->load()) : 0.0;
        if (world_ > 1) o_.comm->all_reduce(dtype::f64, reducer::max, &seen, 1);
        return static_cast<int>(seen);
    }

    // Every rank reads the whole data and takes its share of each batch: a rank
    // whose data differs (another file, or one cut short) would compute other
    // steps, or run out and leave the others waiting, so the run stops first,
    // on every rank, naming the ranks that differ from rank 0.
    void check_same_data() {
        if (world_ == 1) return;
        const std::int64_t mine[3] = {data_.train_blocks(), data_.val_blocks(), static_cast<std::int64_t>(data_.fingerprint())};
        std::vector<std::int64_t> all(3 * static_cast<std::size_t>(world_));
        o_.comm->all_gather(mine, all.data(), sizeof mine);
        std::string differ;
        for (int r = 1; r < world_; ++r) {
            const auto* x = &all[3 * static_cast<std::size_t>(r)];
            if (x[0] == all[0] && x[1] == all[1] && x[2] == all[2]) continue;
            differ += (differ.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + "'s has " + std::to_string(x[0]) +
                      " training blocks and " + std::to_string(x[1]) + " held out" +
                      (x[0] == all[0] && x[1] == all[1] ? " (other tokens)" : "");
        }
        if (!differ.empty())
            throw error("parallel ranks read different data: rank 0's has " + std::to_string(all[0]) + " training blocks and " +
                        std::to_string(all[1]) + " held out, " + differ + ". Every rank takes its share of the same batches: give "
                        "every rank the same --data, --seq and --val-fraction");
    }

    // The validation loss: the loss graph (no update, no dropout) over every held-out block.
    struct eval_graph {
        std::int64_t rows = 0;
        graph g{"validation"};
        std::unique_ptr<cpu::executor> run;
        explicit eval_graph(training_run& t) {
            rows = std::min(t.o_.batch, t.data_.val_blocks());
            if (rows == 0) return;
            (void)t.loss_graph(g, {.batch = rows, .seq = t.o_.seq});  // rows per rank
            run = std::make_unique<cpu::executor>(g, cpu::options{.threads = t.o_.threads, .comm = t.tp_ > 1 ? t.o_.comm : nullptr});
        }
    };

    // The loss of a batch in the run's precision.
    node_id loss_graph(graph& g, train::batch_shape b) const {
        b.tp = tp_;
        b.dp = tp_ > 1 ? ranks_ : 1;
        return train::causal_lm_loss_in<Family>(o_.precision, g, c_, b).id();
    }
    parallel::mesh mesh() const { return {.degree = tp_, .replicas = ranks_}; }

    void ensure_trainer() {
        if (trainer_) return;
        if (world_ > 1 && !o_.comm)
            throw error("training_run: a run of " + std::to_string(world_) + " ranks needs each rank's communicator (train_model makes them)");
        if (tp_ > 1)  // this rank's tensor-parallel group (a part of the run's ranks when there are several groups)
            tp_comm_ = ranks_ > 1 ? o_.comm->split(mesh().groups().groups) : std::shared_ptr<cpu::communicator>(o_.comm, [](auto*) {});
        const auto wt = train::weight_type(o_.precision);
        cpu::named_arrays weights;
        nlohmann::json state;
        if (!o_.resume.empty()) {
            state = read_resume(weights);
        } else if (!m_.dir.empty()) {
            files_.emplace(m_.dir, c_, tp_, std::vector<int>{tp_rank_});
            weights = files_->arrays(0, wt);
        } else if (copy_ == 0) {  // the first data-parallel rank's are broadcast to the others
            weights = train::initial_weights(specs_, c_.initializer_range, o_.seed, o_.threads);
            for (std::size_t i = 0; i < weights.size(); ++i) {
                auto& w = weights[i].second;
                if (tp_ > 1) w = owned(parallel::shard(w, shard_specs_[i].split, tp_, tp_rank_));  // the padding rows zero
                if (wt != dtype::f32) {
                    auto narrow = cpu::array::uninitialized(wt, w.dims());
                    detail::convert_floats(w.type(), w.data(), wt, narrow.mutable_data(), w.size());
                    w = std::move(narrow);
                }
            }
        } else {
            for (const auto& spec : shard_specs_)
                weights.emplace_back(spec.name, cpu::array(wt, parallel::shard_shape(spec.dims, spec.split, tp_)));
        }
        dropout_ = o_.dropout && (c_.dropout.embedding > 0 || c_.dropout.attention > 0 || c_.dropout.residual > 0);
        std::vector<std::string> shards;
        if (tp_ > 1)
            for (const auto& spec : shard_specs_)
                if (!spec.split.empty()) shards.push_back(spec.name);
        trainer_.emplace(
            [&](graph& g) { return loss_graph(g, {.batch = o_.batch / ranks_, .seq = o_.seq, .dropout = dropout_}); },
            std::move(weights),
            trainer::options{.update = o_.update, .threads = o_.threads, .comm = world_ > 1 ? o_.comm : nullptr, .shards = std::move(shards)});
        if (!o_.resume.empty()) {
            const io::safetensors opt(o_.resume / "optimizer.safetensors");
            cpu::named_arrays s;
            for (const auto& [name, a] : trainer_->state()) {
                if (!opt.contains(name))
                    throw error((o_.resume / "optimizer.safetensors").string() + ": the optimizer's state " + name +
                                " is missing (a checkpoint of another optimizer or precision? --optimizer and --precision must be the run's)");
                const auto& e = opt.entry(name);
                const auto [split, extent] = split_of(name);
                auto whole_dims = a.dims();  // the checkpoint's is whole; this rank's a shard of it
                for (auto& d : whole_dims)
                    if (d.name == split) d.extent = extent;
                std::vector<std::int64_t> want;
                for (const auto& d : whole_dims) want.push_back(d.extent);
                if (e.type != a.type() || e.shape != want)
                    throw error((o_.resume / "optimizer.safetensors").string() + ": " + name + " is " + std::string(scribe::name(e.type)) +
                                io::shape_text(e.shape) + ", the optimizer's is " + std::string(scribe::name(a.type())) +
                                io::shape_text(want));
                const auto bytes = opt.bytes(name);
                const auto whole = cpu::array::borrow(a.type(), whole_dims, bytes.data(), bytes.size());
                // (copied: the file is closed after this)
                s.emplace_back(name, owned(split.empty() ? whole : parallel::shard(whole, split, tp_, tp_rank_)));
            }
            trainer_->set_state(std::move(s));
            if (trainer_->steps() != state["step"].get<std::int64_t>())
                throw error((o_.resume / "optimizer.safetensors").string() + ": optimizer.step is " + std::to_string(trainer_->steps()) +
                            ", trainer_state.json says " + std::to_string(state["step"].get<std::int64_t>()));
            if (trainer_->steps() > total_)
                throw error("--resume " + o_.resume.string() + " is at step " + std::to_string(trainer_->steps()) +
                            ", past this run's " + std::to_string(total_) + " steps");
        }
    }

    // The checkpoint's weights, after checking it is one of this model and run.
    nlohmann::json read_resume(cpu::named_arrays& weights) {
        const auto& dir = o_.resume;
        const auto file = dir / "trainer_state.json";
        const auto state = io::read_json(file, io::config_file_limit, "a checkpoint's trainer state");
        auto field = [&](const char* k) -> const nlohmann::json& {
            if (!state.is_object() || !state.contains(k)) throw error(file.string() + ": missing field `" + std::string(k) + "`");
            return state[k];
        };
        if (field("model_type") != config_json_.value("model_type", std::string("gpt2")) ||
            field("weights") != detail::weight_list_json(specs_))
            throw error("--resume " + dir.string() + " is a checkpoint of another model (" + io::shown(field("model_type")) + ", " +
                        std::to_string(field("weights").size()) + " weights) than the one being trained (" +
                        io::shown(config_json_.value("model_type", std::string("gpt2"))) + ", " + std::to_string(specs_.size()) +
                        " weights, or other shapes)");
        const std::pair<const char*, std::int64_t> same[] = {
            {"batch", o_.batch}, {"seq", o_.seq}, {"accumulate", o_.update.accumulate}, {"steps", total_}};
        for (const auto& [k, v] : same)
            if (!field(k).is_number_integer() || field(k).template get<std::int64_t>() != v)
                throw error("--resume " + dir.string() + " was trained with " + k + " " + io::shown(field(k)) + ", this run has " +
                            std::to_string(v) + ": give the run's options again (its trainer_state.json lists them)");
        // (A checkpoint from before --precision existed is f32's.)
        const auto was = state.is_object() && state.contains("precision") ? state["precision"] : nlohmann::json("f32");
        if (was != std::string(train::name(o_.precision)))
            throw error("--resume " + dir.string() + " was trained with --precision " + io::shown(was) + ", this run has " +
                        std::string(train::name(o_.precision)) + ": a run resumes in its own precision (give --precision " +
                        (was.is_string() ? was.get<std::string>() : std::string("f32")) + ")");
        if (!field("seed").is_number_unsigned() || field("seed").template get<std::uint64_t>() != o_.seed)
            throw error("--resume " + dir.string() + " was trained with --seed " + io::shown(field("seed")) + ", this run has " +
                        std::to_string(o_.seed));
        if (!field("step").is_number_integer() || field("step").template get<std::int64_t>() < 0)
            throw error(file.string() + ": `step` must be a step number, got " + io::shown(field("step")));
        const auto c = config::parse(models::read_config_json(dir / "config.json"), (dir / "config.json").string());
        files_.emplace(dir, c, tp_, std::vector<int>{tp_rank_});
        weights = files_->arrays(0, train::weight_type(o_.precision));
        return state;
    }

    void check_budget() {
        auto m = memory();
        if (ranks_here_ > 1) {  // every rank of this process holds as much
            const auto k = static_cast<std::size_t>(ranks_here_);
            m = {m.weights * k, m.gradients * k, m.optimizer * k, m.activations * k};
        }
        const auto budget = o_.memory_budget ? o_.memory_budget : static_cast<std::size_t>(detail::physical_memory());
        if (budget && m.total() > budget)
            throw error("training needs about " + detail::mib(m.total()) + " (weights " + detail::mib(m.weights) + ", gradients " +
                        detail::mib(m.gradients) + ", optimizer " + detail::mib(m.optimizer) + ", the step's values " +
                        detail::mib(m.activations) + " for --batch " + std::to_string(o_.batch) + " x --seq " + std::to_string(o_.seq) +
                        "), more than " + (o_.memory_budget ? "--memory-budget " : "this machine's ") + detail::mib(budget) +
                        ": a smaller --batch (with --accumulate to keep the batch) or --seq fits");
        if (o_.on_note && lead())
            o_.on_note("memory: about " + detail::mib(m.total()) + " (weights, gradients and optimizer " +
                       detail::mib(m.weights + m.gradients + m.optimizer) + "; the step's values " + detail::mib(m.activations) + ")");
    }

    // This rank's part of micro-batch j of step `step`: its blocks of this
    // epoch's order, one after another.
    void fill(std::int64_t step, std::int64_t j, std::vector<std::int32_t>& ids) {
        const auto epoch = step / steps_per_epoch_;
        if (epoch != order_epoch_) {
            order_ = train::epoch_order(data_.train_blocks(), o_.seed, epoch);
            order_epoch_ = epoch;
        }
        const auto mine = o_.batch / ranks_;
        const auto first = ((step % steps_per_epoch_) * o_.update.accumulate + j) * o_.batch + copy_ * mine;
        for (std::int64_t r = 0; r < mine; ++r) {
            const auto block = data_.train_block(order_[static_cast<std::size_t>(first + r)]);
            std::copy(block.begin(), block.end(), ids.begin() + static_cast<std::ptrdiff_t>(r * o_.seq));
        }
    }

    double evaluate(std::int64_t step) {
        if (!eval_->run) return std::numeric_limits<double>::quiet_NaN();
        const auto rows = eval_->rows;
        double sum = 0;
        std::int64_t counted = 0;
        std::vector<std::int32_t> ids(static_cast<std::size_t>(rows * o_.seq)), lengths(static_cast<std::size_t>(rows));
        for (std::int64_t b = copy_ * rows; b < data_.val_blocks(); b += rows * ranks_) {  // this data-parallel rank's share
            const auto n = std::min(rows, data_.val_blocks() - b);
            for (std::int64_t r = 0; r < rows; ++r) {
                lengths[static_cast<std::size_t>(r)] = r < n ? static_cast<std::int32_t>(o_.seq) : 0;  // a short last batch: empty rows
                if (r < n) {
                    const auto block = data_.val_block(b + r);
                    std::copy(block.begin(), block.end(), ids.begin() + static_cast<std::ptrdiff_t>(r * o_.seq));
                }
            }
            cpu::named_arrays in;
            for (const auto& [name, a] : trainer_->weights()) in.emplace_back(name, a.view());
            in.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", rows}, {"seq", o_.seq}}, ids.data(), ids.size() * 4));
            in.emplace_back("lengths", cpu::array::borrow(dtype::s32, {{"batch", rows}}, lengths.data(), lengths.size() * 4));
            const auto out = eval_->run->run_donating(std::move(in));
            if (tp_rank_ != 0) continue;  // the group's first rank counts its loss
            const auto predicted = n * (o_.seq - 1);  // each block's tokens after its first
            sum += static_cast<double>(out[0].template values<float>()[0]) * static_cast<double>(predicted);
            counted += predicted;
        }
        if (world_ > 1) {
            double both[2] = {sum, static_cast<double>(counted)};
            o_.comm->all_reduce(dtype::f64, reducer::sum, both, 2);
            sum = both[0];
            counted = static_cast<std::int64_t>(both[1]);
        }
        const double loss = sum / static_cast<double>(counted);
        eval_report e{.step = step, .loss = loss, .perplexity = std::exp(loss)};
        val_curve_.push_back({step, loss});
        if (!lead()) return loss;
        log({{"step", step}, {"val_loss", loss}, {"val_perplexity", e.perplexity}});
        if (o_.on_eval) o_.on_eval(e);
        write_curve();
        return loss;
    }

    nlohmann::json trainer_state(std::int64_t step) const {
        return {{"step", step},
                {"steps", total_},
                {"epoch", step / steps_per_epoch_},
                {"batch", o_.batch},
                {"seq", o_.seq},
                {"accumulate", o_.update.accumulate},
                {"seed", o_.seed},
                {"dropout", dropout_},
                {"precision", std::string(train::name(o_.precision))},
                {"model_type", config_json_.value("model_type", std::string("gpt2"))},
                {"weights", detail::weight_list_json(specs_)},
                {"log_lines", log_lines_}};
    }

    // The dimension weight (or optimizer state) `name` is split along and its
    // whole extent there; {"", 0} for one held whole.
    std::pair<std::string, std::int64_t> split_of(std::string_view name) const {
        if (tp_ == 1) return {"", 0};
        auto weight = name;
        if (weight.starts_with("optimizer.")) {  // optimizer.<kind>.<weight>
            weight.remove_prefix(10);
            const auto dot = weight.find('.');
            if (dot == std::string_view::npos) return {"", 0};
            weight.remove_prefix(dot + 1);
        }
        for (std::size_t i = 0; i < shard_specs_.size(); ++i)
            if (shard_specs_[i].name == weight && !shard_specs_[i].split.empty())
                for (const auto& d : specs_[i].dims)
                    if (d.name == shard_specs_[i].split) return {shard_specs_[i].split, d.extent};
        return {"", 0};
    }
    // A copy of a's elements in memory of its own (a may be a view of another's).
    static cpu::array owned(const cpu::array& a) {
        auto own = cpu::array::uninitialized(a.type(), a.dims());
        if (a.bytes()) std::memcpy(own.mutable_data(), a.data(), a.bytes());
        return own;
    }
    // The whole of each array (weights or optimizer state) on the first
    // data-parallel rank's tensor-parallel ranks: their shards gathered (a
    // collective of those ranks; the other ranks get nothing). Views of the
    // arrays themselves without tensor parallelism.
    cpu::named_arrays whole(const cpu::named_arrays& mine) const {
        cpu::named_arrays out;
        if (tp_ > 1 && copy_ != 0) return out;
        std::vector<unsigned char> parts;
        for (const auto& [name, a] : mine) {
            const auto [split, extent] = split_of(name);
            if (split.empty()) {
                out.emplace_back(name, a.view());
                continue;
            }
            parts.resize(a.bytes() * static_cast<std::size_t>(tp_));
            tp_comm_->all_gather(a.data(), parts.data(), a.bytes());
            out.emplace_back(name, parallel::unshard(a.type(), a.dims(), parts.data(), split, tp_, extent));
        }
        return out;
    }

    // checkpoint-<step>: written into a temporary folder, then renamed into place.
    std::filesystem::path save(std::int64_t step) {
        namespace fs = std::filesystem;
        const auto final_dir = o_.out / detail::checkpoint_name(step);
        const auto weights = whole(trainer_->weights());
        const auto optimizer = whole(trainer_->state());
        if (!lead()) return final_dir;  // rank 0's, whose weights are this rank's
        const auto temp = o_.out / (detail::checkpoint_name(step) + ".tmp-" + std::to_string(::getpid()));
        fs::remove_all(temp);
        save_pretrained<Family>(temp, config_json_, c_, weights, dtype::f32, tokenizer_dir_);
        std::vector<io::tensor_to_write> state;
        for (const auto& [name, a] : optimizer) {
            std::vector<std::int64_t> extents;
            for (const auto& d : a.dims()) extents.push_back(d.extent);
            state.push_back({name, a.type(), extents, {a.data(), a.bytes()}});
        }
        io::write_safetensors(temp / "optimizer.safetensors", state, {{"format", "pt"}});
        io::write_text(temp / "trainer_state.json", trainer_state(step).dump(2) + "\n");
        std::error_code ec;
        if (fs::exists(final_dir, ec)) {  // written before (a run resumed from an earlier step): replaced whole
            const auto old = o_.out / (detail::checkpoint_name(step) + ".old-" + std::to_string(::getpid()));
            fs::rename(final_dir, old);
            fs::rename(temp, final_dir);
            fs::remove_all(old);
        } else {
            fs::rename(temp, final_dir);
        }
        last_checkpoint_ = final_dir;
        write_curve();
        if (o_.on_save) o_.on_save(final_dir, step);
        return final_dir;
    }

    void save_final() {
        const auto weights = whole(trainer_->weights());
        if (!lead()) return;
        save_pretrained<Family>(o_.out, config_json_, c_, weights, o_.save_type, tokenizer_dir_);
        if (o_.on_save) o_.on_save(o_.out, trainer_->steps());
    }

    // log.jsonl: a resumed run keeps the lines up to its checkpoint's and drops the rest.
    void start_log() {
        const auto path = o_.out / "log.jsonl";
        std::string kept;
        if (!o_.resume.empty()) {
            const auto step = trainer_->steps();
            std::ifstream in(path);
            for (std::string line; std::getline(in, line);) {
                const auto j = nlohmann::json::parse(line, nullptr, false);
                if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) continue;
                if (j["step"].get<std::int64_t>() > step) break;
                kept += line + "\n";
                ++log_lines_;
                if (j.contains("loss") && j["loss"].is_number()) train_curve_.push_back({j["step"].get<std::int64_t>(), j["loss"].get<double>()});
                if (j.contains("val_loss") && j["val_loss"].is_number())
                    val_curve_.push_back({j["step"].get<std::int64_t>(), j["val_loss"].get<double>()});
            }
            if (o_.on_note && lead()) o_.on_note("resuming at step " + std::to_string(step) + " of " + std::to_string(total_) + " from " + o_.resume.string());
        }
        io::write_text(path, kept);
        log_.open(path, std::ios::app);
        if (!log_) throw error(path.string() + ": cannot write");
    }
    void log(const nlohmann::json& j) {
        if (!lead()) return;
        log_ << j.dump() << "\n";
        log_.flush();
        ++log_lines_;
    }
    void write_curve() {
        if (!lead()) return;
        io::write_text(o_.out / "loss.svg", train::loss_curve_svg(train_curve_, val_curve_, std::string(Family::name) + " training loss"));
    }

    model_source m_;
    const train::token_blocks& data_;
    training_options o_;
    nlohmann::json config_json_;
    config c_;
    std::filesystem::path tokenizer_dir_;
    std::vector<models::weight_spec> specs_;
    std::int64_t steps_per_epoch_ = 0, total_ = 0;
    std::optional<weight_files<Family>> files_;  // the weights read from, mmapped until the first step replaces them
    std::optional<trainer> trainer_;
    std::unique_ptr<eval_graph> eval_;
    bool dropout_ = false;
    int ranks_here_ = 1;
    // The run's ranks (world_), of which ranks_ data-parallel ones of tp_
    // tensor-parallel ranks each; this rank is rank_, tensor-parallel rank
    // tp_rank_ of data-parallel rank copy_.
    int world_ = 1, ranks_ = 1, rank_ = 0, tp_ = 1, copy_ = 0, tp_rank_ = 0;
    std::vector<models::weight_spec> shard_specs_;  // Family::weights(c_, tp_): the dims and splits of the shards
    std::shared_ptr<cpu::communicator> tp_comm_;    // this rank's tensor-parallel group
    std::vector<std::int64_t> order_;
    std::int64_t order_epoch_ = -1;
    std::ofstream log_;
    std::int64_t log_lines_ = 0;
    std::vector<train::loss_point> train_curve_, val_curve_;
    std::filesystem::path last_checkpoint_;
};

// Runs a whole training run (see the top of this file). With o.dp x o.tp > 1
// (and no o.comm) the ranks are threads of this process, o.threads shared among them;
// rank 0's result is returned, and a rank that fails stops the others (their
// exchanges throw) and its error is the one thrown here.
template <class Family>
training_result train_model(const model_source& m, const train::token_blocks& data, training_options o) {
    if (o.dp < 1 || o.dp > cpu::thread_group::max_ranks)
        throw error("--dp " + std::to_string(o.dp) + ": data-parallel ranks number 1 to " + std::to_string(cpu::thread_group::max_ranks));
    if (o.tp < 1 || o.tp > cpu::thread_group::max_ranks || o.dp * o.tp > cpu::thread_group::max_ranks)
        throw error("--tp " + std::to_string(o.tp) + " x --dp " + std::to_string(o.dp) + ": a run's ranks number 1 to " +
                    std::to_string(cpu::thread_group::max_ranks));
    const int n = o.dp * o.tp;
    if (n == 1 || o.comm) return training_run<Family>(m, data, std::move(o)).run();
    const auto threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
    cpu::thread_group group(n);
    std::vector<training_result> results(static_cast<std::size_t>(n));
    std::vector<std::exception_ptr> failed(static_cast<std::size_t>(n));
    std::atomic<int> first_failure{-1};
    std::vector<std::thread> ranks;
    for (int r = 0; r < n; ++r)
        ranks.emplace_back([&, r] {
            try {
                auto mine = o;
                mine.comm = &group[r];
                mine.threads = std::max(1u, threads / static_cast<unsigned>(n));  // an equal share each, at least 1
                if (r > 0) mine.on_step = {}, mine.on_eval = {}, mine.on_save = {}, mine.on_note = {};
                results[static_cast<std::size_t>(r)] = training_run<Family>(m, data, std::move(mine), n).run();
            } catch (...) {
                failed[static_cast<std::size_t>(r)] = std::current_exception();
                int none = -1;
                first_failure.compare_exchange_strong(none, r);
                group[r].abort();
            }
        });
    for (auto& t : ranks) t.join();
    if (const int f = first_failure.load(); f >= 0) std::rethrow_exception(failed[static_cast<std::size_t>(f)]);
    return results.front();
}

}  // namespace scribe::runtime
