// tools/train.cpp — `scribe train`: fine-tunes a model folder or trains one from
// a config on plain text, with a progress bar, validation, a JSON-lines log, a
// loss curve and checkpoints (runtime/training.hpp does the run; this file reads
// the command line and the text, and shows the progress).
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <scribe/io/tokenizer.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/training.hpp>

#include "cli.hpp"

namespace scribe::cli {

namespace {

const char* usage_train = R"(usage: scribe train [MODEL] --data FILE... --out DIR [options]
       scribe train --config FILE --tokenizer DIR --data FILE... --out DIR [options]
       scribe train --resume DIR --data FILE... --out DIR [the run's options]
       mpirun -np N scribe train ...   (N ranks as processes: N / --tp data-parallel
                                        groups of --tp tensor-parallel ranks)

Trains a causal language model on plain text: fine-tunes MODEL (a Hugging Face
folder: config.json, the weights and the tokenizer; default the demo model), or
trains a new one from --config (a config.json; the weights drawn as Hugging Face
draws them, from --seed) with the tokenizer of folder --tokenizer. One compiled
step per iteration: forward, backward and the optimizer in one graph.

The text of every --data file is tokenized with the model's tokenizer (files
joined by its end-of-text token), packed into blocks of --seq tokens, and the
last --val-fraction of the blocks held out for validation. Each epoch visits the
training blocks in an order drawn from --seed.

Written in DIR (--out):
  checkpoint-<step>/   every --save-every steps, at the end, and when stopped by
                       Ctrl-C (SIGINT) or SIGTERM: a Hugging Face folder (f32
                       weights, config.json, the tokenizer; transformers loads it)
                       with the optimizer's state; --resume continues from it
                       exactly as if the run had not stopped
  model.safetensors, config.json, tokenizer files   the trained model (--save-dtype)
  log.jsonl            one JSON line per step (loss, lr, grad_norm, tokens_per_s)
                       and per validation (val_loss, val_perplexity)
  loss.svg             the loss curve

Data parallel: --dp N trains N ranks as threads of this process; under
`mpirun -np N` every process is a rank. Each rank trains on its share of every
global batch (--batch blocks, split evenly: it must be a multiple of N) from
rank 0's weights, and the ranks average their gradients before each update, so
the run computes what one process computes on the whole batch. Rank 0 writes
the log, the checkpoints and the model; --resume continues at any N that
divides --batch.

Tensor parallel: --tp T splits every data-parallel rank into T ranks that each
hold 1/T of the attention heads and of the MLP (Megatron's layout, as `scribe
generate --tp` runs it), with --dp N as N x T threads, or under `mpirun -np N*T`
as processes (rank r is tensor-parallel rank r % T of data-parallel rank r / T).
The step computes what TP 1 computes. Checkpoints and the model are written
whole, in the Hugging Face layout, so a run resumes at any --tp and --dp.

options:
  --data FILE...         plain-text (UTF-8) files to train on (required)
  --out DIR              where to write (required; a folder with a run in it is
                         refused unless --resume or --overwrite)
  --config FILE          train a new model from this config.json (needs --tokenizer)
  --tokenizer DIR        the folder whose tokenizer --config's model uses
  --resume DIR           continue a run from its checkpoint-<step> folder (or from
                         the latest checkpoint in a run's --out folder); give the
                         run's options again (batch, seq, steps, seed, optimizer,
                         precision)
  --steps N              optimizer steps of the run
  --epochs N             or passes over the training blocks (default: 1 epoch)
  --batch B              blocks per micro-batch, over all data-parallel ranks
                         (default 8)
  --seq N                tokens per block (default 128, at most the model's positions)
  --val-fraction F       the last part of the blocks held out (default 0.05; 0: none)
  --eval-every N         validation loss every N steps (default: at the end only)
  --save-every N         a checkpoint every N steps (default: at the end only)
  --seed S               weights of a new model, block order, dropout (default 0)
  --threads N            CPU threads (default: all; with --dp/--tp, shared by the ranks;
                         under mpirun, each process's)
  --dp N                 data-parallel ranks as threads (default 1)
  --tp T                 tensor-parallel ranks per data-parallel rank (default 1;
                         T must divide the attention heads and the MLP's width)
  --bucket-size SIZE     gradients all-reduced together, in bytes or 4M, 25M
                         (default 25M, as PyTorch's DDP)
  --collective-timeout S with --dp, --tp or mpirun: fail when a rank waits more than S
                         seconds for the others (a hung, stopped or dead rank),
                         naming the ranks that did not arrive (default 300); the
                         checkpoints written before stay whole
  --no-dropout           train without the config's dropout
  --precision P          the run's arithmetic (default f32):
                           f32          f32 weights and arithmetic
                           bf16         bf16 weights and activations, updates
                                        rounded to nearest (small ones are lost)
                           bf16-sr      bf16, updates rounded stochastically
                                        (unbiased; seeded by --seed)
                           bf16-master  bf16 model, f32 master weights in the
                                        optimizer
                           autocast     f32 weights, matrix products in bf16
                         gradients, the optimizer and the loss are f32 in every
                         mode; checkpoints hold the weights in f32
  --save-dtype T         f32, f16 or bf16: the dtype of the trained model in DIR
                         (default: the config's dtype; checkpoints are always f32,
                         so that --resume continues exactly)
  --memory-budget SIZE   refuse a run that needs more than SIZE (bytes, or 512M, 2G;
                         default: this machine's memory)
  --overwrite            write into an --out folder that holds another run
  --quiet                no progress bar; only the summary at the end
)";

// The first SIGINT or SIGTERM asks the run to save and stop after its step; a
// second one ends the program at once, as the signal does by default.
std::atomic<int> stop_signal{0};
extern "C" void on_stop_signal(int sig) {
    if (stop_signal.exchange(sig) != 0) {
        std::signal(sig, SIG_DFL);
        std::raise(sig);
    }
}

// The run's handlers for SIGINT and SIGTERM while it lives; the handlers it found
// are back after it, however it ends (a caller in this process, such as the
// Python package, keeps its own Ctrl-C), and a new run starts unstopped.
struct stop_signals {
    using handler = void (*)(int);
    handler old_int, old_term;
    stop_signals() {
        stop_signal = 0;
        old_int = std::signal(SIGINT, on_stop_signal);
        old_term = std::signal(SIGTERM, on_stop_signal);
    }
    ~stop_signals() {
        std::signal(SIGINT, old_int == SIG_ERR ? SIG_DFL : old_int);
        std::signal(SIGTERM, old_term == SIG_ERR ? SIG_DFL : old_term);
    }
    stop_signals(const stop_signals&) = delete;
    stop_signals& operator=(const stop_signals&) = delete;
};

std::string duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const auto s = static_cast<long long>(seconds + 0.5);
    char b[32];
    if (s >= 3600) std::snprintf(b, sizeof b, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else std::snprintf(b, sizeof b, "%lldm%02llds", s / 60, s % 60);
    return b;
}

// The run's progress on standard error: a bar redrawn in place on a terminal, a
// line every 2% of the run otherwise (a log file).
struct progress_bar {
    bool tty = ::isatty(2) != 0;
    bool quiet = false;
    bool drawn = false;
    void step(const runtime::step_report& r) {
        if (quiet) return;
        const auto every = std::max<std::int64_t>(1, r.total / 50);
        if (!tty && r.step % every != 0 && r.step != r.total && r.step != 1) return;
        const double done = static_cast<double>(r.step) / static_cast<double>(r.total);
        std::string bar(20, '-');
        for (int k = 0; k < static_cast<int>(done * 20); ++k) bar[static_cast<std::size_t>(k)] = '#';
        std::fprintf(stderr, "%sstep %lld/%lld [%s] %5.1f%%  loss %.4f  lr %.3g  %.0f tok/s  ETA %s%s", tty ? "\r" : "",
                     static_cast<long long>(r.step), static_cast<long long>(r.total), bar.c_str(), 100 * done, r.loss, r.lr,
                     r.tokens_per_s, duration(r.eta).c_str(), tty ? "\033[K" : "\n");
        drawn = tty;
        std::fflush(stderr);
    }
    void line(const std::string& s) {
        if (quiet) return;
        if (drawn) std::fprintf(stderr, "\n");
        drawn = false;
        std::fprintf(stderr, "%s\n", s.c_str());
    }
};

// The latest checkpoint-<step> of a run's folder, or the folder itself when it is one.
std::filesystem::path resume_folder(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw error("--resume " + dir.string() + ": no such folder");
    if (fs::exists(dir / "trainer_state.json", ec)) return dir;
    std::int64_t best = -1;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const auto n = e.path().filename().string();
        if (!n.starts_with("checkpoint-") || !fs::exists(e.path() / "trainer_state.json", ec)) continue;
        const auto digits = n.substr(11);
        if (digits.empty() || digits.size() > 12 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        best = std::max<std::int64_t>(best, std::stoll(digits));
    }
    if (best < 0) throw error("--resume " + dir.string() + ": neither a checkpoint (trainer_state.json) nor a run's folder with checkpoint-<step> folders");
    return dir / ("checkpoint-" + std::to_string(best));
}

// Every --data file's text, tokenized, files joined by the end-of-text token.
std::vector<std::int32_t> read_data(const args& a, const io::tokenizer& tok, progress_bar& p) {
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::int32_t> tokens;
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < a.data.size(); ++i) {
        const auto& f = a.data[i];
        const auto text = io::read_text(f, std::uint64_t{1} << 32, "training text (--data)");
        if (text.empty()) throw error("--data " + io::shown_path(f) + " is empty");
        bytes += text.size();
        const auto ids = tok.encode(text);
        if (i > 0 && tok.eos_id()) tokens.push_back(*tok.eos_id());
        tokens.insert(tokens.end(), ids.begin(), ids.end());
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char b[256];
    std::snprintf(b, sizeof b, "data: %zu file%s, %.1f MB, %zu tokens (%.2f bytes a token; tokenized in %.1f s)", a.data.size(),
                  a.data.size() == 1 ? "" : "s", static_cast<double>(bytes) / 1e6, tokens.size(),
                  tokens.empty() ? 0.0 : static_cast<double>(bytes) / static_cast<double>(tokens.size()), s);
    p.line(b);
    return tokens;
}

// With --resume, a MODEL or --config given too must be the checkpoint's model.
void check_same_model(const args& a, const fs::path& resume) {
    const auto given_source = a.value("config") ? *a.value("config") : (a.model / "config.json").string();
    const auto given = a.value("config") ? io::read_json(*a.value("config"), io::config_file_limit, "the model's config")
                                         : models::read_config_json(a.model / "config.json");
    const auto state = io::read_json(resume / "trainer_state.json", io::config_file_limit, "a checkpoint's trainer state");
    const auto type = models::model_type(given, given_source);
    const bool same = models::with_family_type(type, given_source, [&]<class Family>() {
        const auto c = Family::config::parse(given, given_source);
        return state.is_object() && state.value("model_type", std::string()) == type &&
               state.contains("weights") && state["weights"] == runtime::detail::weight_list_json(Family::weights(c));
    });
    if (!same)
        throw error("--resume " + resume.string() + " is a checkpoint of another model than " + given_source + " (" + type + ", " +
                    "its weights' names and shapes differ); resume it without MODEL or --config, or give the model it was trained from");
}

template <class Family>
int run_training(const args& a, const runtime::model_source& src, const fs::path& out, const fs::path& resume, cpu::communicator* comm,
                 const train_observer* observer) {
    const bool lead = !comm || comm->rank() == 0;  // under mpirun only rank 0 speaks
    progress_bar p{.quiet = a.flag("quiet") || !lead};
    const auto tok = io::tokenizer::from_folder(src.dir.empty() ? src.tokenizer : src.dir);
    const auto tokens = read_data(a, tok, p);
    const auto config_json = src.dir.empty() ? src.config : models::read_config_json(src.dir / "config.json");
    const auto c = Family::config::parse(config_json, src.dir.empty() ? *a.value("config") : (src.dir / "config.json").string());
    if (tok.vocab_size() > c.vocab_size)
        throw error("the tokenizer has " + std::to_string(tok.vocab_size()) + " tokens, more than the model's vocab_size " +
                    std::to_string(c.vocab_size) + ": it is not this model's tokenizer");
    const auto seq = a.integer("seq", std::min<std::int64_t>(128, c.n_positions), 2, max_count);
    if (seq > c.n_positions)
        throw error("--seq " + std::to_string(seq) + " is longer than the model's " + std::to_string(c.n_positions) + " positions");
    const std::string names = a.data.size() == 1 ? a.data.front() : std::to_string(a.data.size()) + " files";
    const train::token_blocks blocks(tokens, seq, a.number("val-fraction", 0.05, 0, 0.5), "--data " + names);

    runtime::training_options o;
    o.batch = a.integer("batch", 8, 1, 1 << 16);
    o.seq = seq;
    o.steps = a.integer("steps", 0, 1, max_count);
    o.epochs = a.integer("epochs", 0, 1, 1 << 20);
    o.update = parse_update(a, true);
    o.seed = static_cast<std::uint64_t>(a.integer("seed", 0, 0, max_count));
    o.threads = static_cast<unsigned>(a.integer("threads", 0, 1, max_threads));
    o.dp = static_cast<int>(a.integer("dp", 1, 1, cpu::thread_group::max_ranks));
    if (comm && a.value("dp"))
        throw error("--dp runs the ranks as threads; under mpirun -np " + std::to_string(comm->size()) +
                    " the processes are the ranks: leave --dp out");
    o.tp = static_cast<int>(a.integer("tp", 1, 1, cpu::thread_group::max_ranks));
    if (comm && comm->size() % o.tp != 0)
        throw error("--tp " + std::to_string(o.tp) + " does not divide mpirun's " + std::to_string(comm->size()) +
                    " processes: give -np a multiple of --tp (data-parallel ranks x --tp)");
    if (!comm && o.dp * o.tp > cpu::thread_group::max_ranks)
        throw error("--dp " + std::to_string(o.dp) + " x --tp " + std::to_string(o.tp) + " ranks are more than " +
                    std::to_string(cpu::thread_group::max_ranks));
    o.comm = comm;
    if (a.value("collective-timeout"))
        o.collective_timeout = std::chrono::milliseconds(std::llround(1000 * a.number("collective-timeout", 0, 0.001, 86400)));
    if (a.value("bucket-size")) {
        const auto b = parse_size(*a.value("bucket-size"), "--bucket-size");
        if (b < 1 || b > (std::size_t{1} << 40)) throw error("--bucket-size " + *a.value("bucket-size") + " must be 1 byte to 1T");
        o.bucket_bytes = static_cast<std::int64_t>(b);
    }
    o.eval_every = a.integer("eval-every", 0, 1, max_count);
    o.save_every = a.integer("save-every", 0, 1, max_count);
    o.out = out;
    o.resume = resume;
    o.dropout = !a.flag("no-dropout");
    o.save_type = a.value("save-dtype") ? parse_dtype(*a.value("save-dtype")) : runtime::config_dtype(config_json);
    if (a.value("precision")) o.precision = train::parse_precision(*a.value("precision"));
    o.memory_budget = a.value("memory-budget") ? parse_size(*a.value("memory-budget")) : 0;
    o.stop = &stop_signal;
    o.on_step = [&](const runtime::step_report& r) {
        p.step(r);
        if (observer && observer->on_step && !observer->on_step(r)) {
            int none = 0;
            stop_signal.compare_exchange_strong(none, train_stopped_by_caller);
        }
    };
    o.on_eval = [&](const runtime::eval_report& e) {
        char b[160];
        std::snprintf(b, sizeof b, "validation at step %lld: loss %.4f, perplexity %.2f", static_cast<long long>(e.step), e.loss,
                      e.perplexity);
        p.line(b);
        if (observer && observer->on_eval) observer->on_eval(e);
    };
    o.on_save = [&](const fs::path& dir, std::int64_t step) { p.line("saved " + dir.string() + " (step " + std::to_string(step) + ")"); };
    o.on_note = [&](const std::string& s) { p.line(s); };

    const int ranks = comm ? comm->size() / o.tp : o.dp;  // data-parallel ranks
    if (o.batch % ranks != 0)
        throw error("--batch " + std::to_string(o.batch) + " (the global batch) does not split evenly over " + std::to_string(ranks) +
                    " data-parallel ranks: give a multiple of " + std::to_string(ranks));
    runtime::training_run<Family> run(src, blocks, o);  // the plan's figures, and rank 0 of --dp's
    {
        char b[512];
        std::snprintf(b, sizeof b, "%s: %s; %lld training blocks of %lld tokens, %lld held out; %lld steps (%lld a epoch) of %lld x %lld blocks%s%s",
                      src.dir.empty() ? "new model" : src.dir.string().c_str(), Family::summary(c).c_str(),
                      static_cast<long long>(blocks.train_blocks()), static_cast<long long>(seq),
                      static_cast<long long>(blocks.val_blocks()), static_cast<long long>(run.total_steps()),
                      static_cast<long long>(run.steps_per_epoch()), static_cast<long long>(o.update.accumulate),
                      static_cast<long long>(o.batch),
                      ranks * o.tp > 1 ? (", " + (ranks > 1 ? std::to_string(ranks) + " data-parallel ranks" : std::string()) +
                                          (ranks > 1 && o.tp > 1 ? " x " : "") + (o.tp > 1 ? "tensor parallel " + std::to_string(o.tp) : std::string()) +
                                          " (" + (comm ? "processes" : "threads") + ")").c_str() : "",
                      o.precision == train::precision::f32 ? "" : (", precision " + std::string(train::name(o.precision))).c_str());
        p.line(b);
    }
    const auto first_step = run.start_step();
    const auto r = [&] {
        const stop_signals during;
        return o.dp * o.tp > 1 && !comm ? runtime::train_model<Family>(src, blocks, o) : run.run();
    }();
    if (observer && observer->on_done && lead) observer->on_done(r);
    if (!lead) return r.stopped_by && r.stopped_by != train_stopped_by_caller ? 128 + r.stopped_by : 0;
    if (r.stopped_by == train_stopped_by_caller) {
        std::fprintf(stderr, "%sstopped by the caller at step %lld of %lld: saved %s; continue with --resume %s\n", p.drawn ? "\n" : "",
                     static_cast<long long>(r.step), static_cast<long long>(r.total), r.checkpoint.string().c_str(),
                     r.checkpoint.string().c_str());
        return 0;
    }
    if (r.stopped_by) {
        std::fprintf(stderr, "%sstopped by %s at step %lld of %lld: saved %s; continue with --resume %s\n", p.drawn ? "\n" : "",
                     r.stopped_by == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(r.step), static_cast<long long>(r.total),
                     r.checkpoint.string().c_str(), r.checkpoint.string().c_str());
        return 128 + r.stopped_by;
    }
    const double tokens_trained = static_cast<double>((r.step - first_step) * o.batch * o.seq * o.update.accumulate);
    std::printf("%strained %lld steps in %s (%.0f tokens/s): train loss %.4f, validation loss %.4f (perplexity %.2f); model in %s\n",
                p.drawn ? "\n" : "", static_cast<long long>(r.step), duration(r.seconds).c_str(), tokens_trained / r.seconds,
                r.train_loss, r.val_loss, std::exp(r.val_loss), out.string().c_str());
    return 0;
}

}  // namespace

int train_command(int argc, char** argv, cpu::communicator* comm, const train_observer* observer) {
    for (int i = 2; i < argc; ++i)
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::printf("%s%s", usage_train, usage_optimizer);
            return 0;
        }
    std::vector<std::string> values = {"data", "out", "config", "tokenizer", "resume", "epochs", "batch", "seq", "val-fraction",
                                       "eval-every", "save-every", "seed", "threads", "memory-budget", "save-dtype", "dp", "tp", "bucket-size", "collective-timeout",
                                       "precision"};
    values.insert(values.end(), optimizer_values.begin(), optimizer_values.end());
    const auto a = parse(argc, argv, values, {"nesterov", "no-dropout", "overwrite", "quiet"});
    if (a.data.empty()) throw error("scribe train needs --data FILE... (plain text to train on; see scribe train --help)");
    if (!a.value("out")) throw error("scribe train needs --out DIR (where checkpoints, the log and the model go)");
    if (a.value("config") && a.model_given) throw error("give a MODEL folder or --config FILE, not both");
    if (a.value("config") && !a.value("tokenizer")) throw error("--config needs --tokenizer DIR (the folder of the new model's tokenizer)");
    if (a.value("tokenizer") && !a.value("config")) throw error("--tokenizer goes with --config (a MODEL folder has its own tokenizer)");
    const fs::path out = *a.value("out");
    const auto resume = a.value("resume") ? resume_folder(*a.value("resume")) : fs::path();
    const bool lead = !comm || comm->rank() == 0;
    if (lead) make_out_folder(out);
    std::error_code ec;
    if (lead && resume.empty() && !a.flag("overwrite") && (fs::exists(out / "log.jsonl", ec) || fs::exists(out / "trainer_state.json", ec)))
        throw error("--out " + out.string() + " holds a run already (log.jsonl): --resume " + out.string() +
                    " continues it, --overwrite starts again over it, or give another folder");

    runtime::model_source src;
    std::string type, source;
    if (!resume.empty()) {
        src.dir = resume;  // the checkpoint holds the weights, the config and the tokenizer
        if (a.value("config") || a.model_given) check_same_model(a, resume);
    } else if (a.value("config")) {
        source = *a.value("config");
        src.config = io::read_json(source, io::config_file_limit, "the model's config");
        src.tokenizer = *a.value("tokenizer");
        type = models::model_type(src.config, source);
    } else {
        check_model_folder(a.model);
        src.dir = a.model;
    }
    if (!src.dir.empty()) {
        source = (src.dir / "config.json").string();
        type = models::model_type(src.dir);
    }
    return models::with_family_type(type, source, [&]<class Family>() { return run_training<Family>(a, src, out, resume, comm, observer); });
}

}  // namespace scribe::cli
