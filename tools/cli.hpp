// tools/cli.hpp — what the `scribe` program's commands share: the parsed command
// line (flags checked, each error naming the flag, the value and what it takes),
// sizes, lists, dtypes, the optimizer's flags (export-hlo --train and train),
// and the folders commands read and write.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <scribe/core/checked.hpp>
#include <scribe/cpu/communicator.hpp>
#include <scribe/io/file.hpp>
#include <scribe/models/common.hpp>
#include <scribe/runtime/model_dtype.hpp>
#include <scribe/train/optimizer.hpp>

#ifndef SCRIBE_DEFAULT_MODEL
#define SCRIBE_DEFAULT_MODEL "models/demo-gpt2"
#endif

namespace scribe::runtime {
struct step_report;
struct eval_report;
struct training_result;
}  // namespace scribe::runtime

namespace scribe::cli {

namespace fs = std::filesystem;

// The optimizer's flags, which export-hlo --train and train share; the defaults are
// Hugging Face Trainer's.
inline const char* usage_optimizer = R"(
optimizer (defaults as Hugging Face's Trainer):
  --optimizer NAME       adamw or sgd (default adamw)
  --lr X                 peak learning rate (default 5e-5)
  --schedule NAME        constant, linear or cosine decay to 0 at the last step,
                         after the warmup (default linear)
  --warmup N             steps of linear warmup from 0 (default 0)
  --min-lr X             where the cosine schedule ends instead of 0 (transformers'
                         cosine_with_min_lr; default 0)
  --steps N              steps of the whole run (linear and cosine need it)
  --weight-decay X       decoupled (AdamW) or L2 (SGD) decay of the weights the
                         checkpoint stores as matrices (not biases or norms; default 0)
  --clip X               clip the global gradient norm to X; 0: no clipping (default 1)
  --accumulate K         micro-batches per step (default 1)
  --beta1 X, --beta2 X   AdamW's moment decay rates (default 0.9, 0.999)
  --eps X                AdamW's epsilon (default 1e-8)
  --momentum X           SGD's momentum (default 0)
  --dampening X          SGD's dampening (default 0)
  --nesterov             SGD with Nesterov momentum
)";

inline const std::vector<std::string> optimizer_values = {"optimizer", "lr", "schedule", "warmup", "min-lr", "steps", "weight-decay", "clip",
                                                   "accumulate", "beta1", "beta2", "eps", "momentum", "dampening"};

// Ranges of the numeric flags (bounds well past any real use, so that no value
// wraps, overflows or asks for an impossible resource).
inline constexpr std::int64_t max_threads = 1024, max_tp = 1024, max_count = 0x7fffffff;

struct args {
    std::string command;
    fs::path model = SCRIBE_DEFAULT_MODEL;
    std::vector<std::string> prompts;  // --prompt, or --text: each one given, in order
    std::vector<std::string> pairs;    // --pair: each one given, in order
    std::map<std::string, std::string> values;
    std::vector<std::string> flags;
    std::vector<std::string> data;  // --data FILE...: every file named, in order
    bool model_given = false;

    bool flag(const std::string& f) const { return std::find(flags.begin(), flags.end(), f) != flags.end(); }
    std::optional<std::string> value(const std::string& k) const {
        const auto it = values.find(k);
        return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
    }
    // The flag's integer in [lo, hi]; out of range or not an integer is an error
    // that names the flag, the value and the range.
    std::int64_t integer(const std::string& k, std::int64_t fallback, std::int64_t lo, std::int64_t hi) const {
        const auto v = value(k);
        if (!v) return fallback;
        std::size_t used = 0;
        std::int64_t x = 0;
        bool range = false;
        try {
            x = std::stoll(*v, &used);
        } catch (const std::out_of_range&) {
            range = true;
        } catch (...) {
            used = 0;
        }
        if (!range && (used != v->size() || v->empty() || std::isspace(static_cast<unsigned char>(v->front()))))
            throw error("--" + k + " takes an integer, not \"" + io::printable(*v) + "\"");
        if (range || x < lo || x > hi)
            throw error("--" + k + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", not " + io::printable(*v));
        return x;
    }
    // The flag's finite number in [lo, hi].
    double number(const std::string& k, double fallback, double lo, double hi) const {
        const auto v = value(k);
        if (!v) return fallback;
        std::size_t used = 0;
        double x = 0;
        try {
            x = std::stod(*v, &used);
        } catch (...) {
            used = 0;
        }
        if (used != v->size() || v->empty() || std::isspace(static_cast<unsigned char>(v->front())))
            throw error("--" + k + " takes a number, not \"" + io::printable(*v) + "\"");
        if (!std::isfinite(x) || x < lo || x > hi)
            throw error("--" + k + " must be a number between " + checked::shown(lo) + " and " + checked::shown(hi) + ", not " + io::printable(*v));
        return x;
    }
};

inline args parse(int argc, char** argv, const std::vector<std::string>& with_value, const std::vector<std::string>& flags) {
    args a;
    a.command = argv[1];
    bool model_set = false;
    for (int i = 2; i < argc; ++i) {
        const std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            const auto k = s.substr(2);
            if (std::find(flags.begin(), flags.end(), k) != flags.end()) {
                a.flags.push_back(k);
            } else if (std::find(with_value.begin(), with_value.end(), k) != with_value.end()) {
                if (i + 1 >= argc) throw error(s + " needs a value (see scribe " + a.command + " --help)");
                if (k == "prompt" || k == "text") {
                    a.prompts.push_back(argv[++i]);
                } else if (k == "pair") {
                    a.pairs.push_back(argv[++i]);
                } else if (k == "data") {  // one file or more, up to the next option
                    a.data.push_back(argv[++i]);
                    while (i + 1 < argc && std::string_view(argv[i + 1]).rfind("--", 0) != 0) a.data.push_back(argv[++i]);
                    a.values[k] = a.data.front();
                } else {
                    a.values[k] = argv[++i];
                }
            } else {
                throw error("unknown option " + s + " for `scribe " + a.command + "` (see scribe " + a.command + " --help)");
            }
        } else if (!model_set) {
            a.model = s;
            model_set = a.model_given = true;
        } else {
            throw error("unexpected argument \"" + s + "\" (one model folder; prompts go after --prompt)");
        }
    }
    return a;
}

inline dtype parse_dtype(const std::string& s) {
    if (s == "f32") return dtype::f32;
    if (s == "f16") return dtype::f16;
    if (s == "bf16") return dtype::bf16;
    throw error("--dtype takes f32, f16 or bf16, not \"" + s + "\"");
}

// A model's --dtype (f32, f16, bf16, q8, q4) is runtime/model_dtype.hpp's.
using runtime::model_dtype;
using runtime::parse_model_dtype;
using runtime::default_model_dtype;

// "1048576", "512K", "300M", "2G" (powers of 1024).
// A size in bytes given to `flag` (--memory-budget, --bucket-size): a number, or with K, M or G.
inline std::size_t parse_size(const std::string& s, const char* flag = "--memory-budget") {
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(s, &used);
    } catch (...) {
        used = 0;
    }
    double unit = 1;
    if (used + 1 == s.size()) {
        const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
        unit = u == 'K' ? 1024.0 : u == 'M' ? 1048576.0 : u == 'G' ? 1073741824.0 : 0.0;
        if (unit > 0) ++used;
    }
    if (used != s.size() || !(v > 0) || unit <= 0 || !std::isfinite(v))
        throw error(std::string(flag) + " takes a size in bytes, or with K, M or G (512M, 2G), not \"" + io::printable(s) + "\"");
    const double bytes = v * unit;
    if (bytes < 1 || bytes > 9.0e18)
        throw error(std::string(flag) + " must be between 1 byte and 8E (2^63 bytes), not " + io::printable(s));
    return static_cast<std::size_t>(bytes);
}

// The optimizer's flags (usage_optimizer), checked: each error names the flag.
inline bool optimizer_given(const args& a) {
    return a.flag("nesterov") || std::any_of(optimizer_values.begin(), optimizer_values.end(), [&](const auto& k) { return a.value(k).has_value(); });
}
// `run_sets_length`: the run's length comes from elsewhere (scribe train's
// --epochs), so a decaying schedule needs no --steps here.
inline train::update_options parse_update(const args& a, bool run_sets_length = false) {
    train::update_options o;
    const auto kind = a.value("optimizer").value_or("adamw");
    const double big = 1e30;
    if (kind == "adamw") {
        o.method = train::adamw{.beta1 = a.number("beta1", 0.9, 0, 0.999999), .beta2 = a.number("beta2", 0.999, 0, 0.999999),
                                .eps = a.number("eps", 1e-8, 1e-30, 1), .weight_decay = a.number("weight-decay", 0, 0, big)};
        for (const auto* k : {"momentum", "dampening"})
            if (a.value(k)) throw error(std::string("--") + k + " is SGD's; --optimizer is adamw");
        if (a.flag("nesterov")) throw error("--nesterov is SGD's; --optimizer is adamw");
    } else if (kind == "sgd") {
        o.method = train::sgd{.momentum = a.number("momentum", 0, 0, big), .dampening = a.number("dampening", 0, 0, 1),
                              .weight_decay = a.number("weight-decay", 0, 0, big), .nesterov = a.flag("nesterov")};
        for (const auto* k : {"beta1", "beta2", "eps"})
            if (a.value(k)) throw error(std::string("--") + k + " is AdamW's; --optimizer is sgd");
    } else {
        throw error("--optimizer takes adamw or sgd, not \"" + io::printable(kind) + "\"");
    }
    try {
        o.lr.kind = train::schedule::parse(a.value("schedule").value_or("linear"));
    } catch (const error&) {
        throw error("--schedule takes constant, linear or cosine, not \"" + io::printable(*a.value("schedule")) + "\"");
    }
    o.lr.lr = a.number("lr", 5e-5, 0, big);
    o.lr.warmup = a.integer("warmup", 0, 0, max_count);
    o.lr.min_lr = a.number("min-lr", 0, 0, big);
    if (o.lr.min_lr > o.lr.lr) throw error("--min-lr " + checked::shown(o.lr.min_lr) + " is above --lr " + checked::shown(o.lr.lr));
    if (o.lr.min_lr > 0 && o.lr.kind != train::schedule::decay::cosine)
        throw error("--min-lr is where the cosine schedule ends: give --schedule cosine");
    o.lr.total = a.integer("steps", 0, 1, max_count);
    if (o.lr.kind != train::schedule::decay::constant && !a.value("steps") && !run_sets_length)
        throw error(std::string("--schedule ") + train::schedule::name(o.lr.kind) +
                    " decays to 0 at the last step: give the run's length with --steps N (or --schedule constant)");
    if (a.value("steps") && o.lr.warmup > o.lr.total)
        throw error("--warmup " + std::to_string(o.lr.warmup) + " is longer than --steps " + std::to_string(o.lr.total));
    o.clip = a.number("clip", 1.0, 0, big);
    o.accumulate = a.integer("accumulate", 1, 1, 1 << 20);
    if (run_sets_length && !a.value("steps")) o.lr.total = std::max<std::int64_t>(o.lr.warmup, 1);  // set by the run
    try {
        train::detail::check(o);
    } catch (const error& e) {  // what the flags cannot catch alone (Nesterov without momentum)
        throw error(std::string(e.what()).substr(std::string_view("[scribe] ").size()));
    }
    return o;
}

inline std::vector<std::int64_t> parse_list(const std::string& s, const char* what) {
    if (s.empty() || s.back() == ',') throw error(std::string(what) + " takes positive integers separated by commas, not \"" + io::printable(s) + "\"");
    std::vector<std::int64_t> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        std::size_t used = 0;
        std::int64_t v = 0;
        try {
            v = std::stoll(item, &used);
        } catch (...) {
            used = 0;
        }
        if (used != item.size() || v <= 0 || v > max_count)
            throw error(std::string(what) + " takes positive integers (below 2^31) separated by commas, not \"" + io::printable(s) + "\"");
        out.push_back(v);
    }
    return out;
}

// A list as parse_list reads it: "16,32,64".
inline std::string list_text(const std::vector<std::int64_t>& v) {
    std::string s;
    for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
}

inline std::string mib(std::size_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return b;
}

// --out DIR, created if need be; a clear error when it cannot be.
inline void make_out_folder(const fs::path& out) {
    std::error_code ec;
    if (fs::exists(out, ec) && !fs::is_directory(out, ec))
        throw error("--out " + io::shown_path(out) + " is a file, not a folder; give a folder to write into");
    fs::create_directories(out, ec);
    if (ec || !fs::is_directory(out))
        throw error("--out " + io::shown_path(out) + ": cannot create the folder (" + ec.message() + ")");
}

// The text of a file a flag names, at most 64 MiB; "-" reads standard input.
// `flag` ("--prompt-file") and `what` ("the prompt file") name it in errors.
inline std::string read_file_arg(const std::string& file, const char* flag, const char* what) {
    constexpr std::size_t limit = 64u << 20;
    if (file != "-") return io::read_text(file, limit, what);
    std::string text;
    char buf[65536];
    for (;;) {
        const auto n = std::fread(buf, 1, sizeof buf, stdin);
        text.append(buf, n);
        if (text.size() > limit) throw error(std::string(flag) + " -: standard input has more than " + std::to_string(limit) + " bytes");
        if (n < sizeof buf) break;
    }
    if (std::ferror(stdin)) throw error(std::string(flag) + " -: cannot read standard input");
    return text;
}

// Text that rank 0 reads (standard input reaches rank 0 only under mpirun), the
// same on every rank.
template <class Read>
std::string shared_text(cpu::communicator* comm, Read&& read) {
    if (!comm) return read();
    std::string text;
    std::uint64_t n = 0;
    if (comm->rank() == 0) {
        text = read();
        n = text.size();
    }
    comm->broadcast(&n, sizeof n, 0);
    text.resize(static_cast<std::size_t>(n));
    if (n) comm->broadcast(text.data(), text.size(), 0);
    return text;
}

// `flag`: the option that named the folder (empty: the command's MODEL).
inline void check_model_folder(const fs::path& dir, const std::string& flag = "") {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return;
    const auto what = flag.empty() ? "model folder " + dir.string() : flag + " " + dir.string();
    if (fs::exists(dir, ec))
        throw error(what + " is a file, not a folder (give the Hugging Face folder that holds config.json)");
    throw error(what + " does not exist (give a Hugging Face model folder" + (flag.empty() ? ", or build the demo model: see README)" : ")"));
}

// An error's message without the library's "[scribe] " prefix: the program
// prints it after "scribe: ", the Python package raises it as ScribeError.
inline std::string message_of(const std::exception& e) {
    std::string_view m = e.what();
    if (m.starts_with("[scribe] ")) m.remove_prefix(9);
    return std::string(m);
}

// What a caller in this process (the Python package's scribe.train) hears of a
// `scribe train` run besides what it prints: each step and validation (on rank
// 0's thread), and the result. on_step returning false stops the run after that
// step, with a checkpoint, as SIGINT does; the result's stopped_by is then
// train_stopped_by_caller.
struct train_observer {
    std::function<bool(const runtime::step_report&)> on_step;
    std::function<void(const runtime::eval_report&)> on_eval;
    std::function<void(const runtime::training_result&)> on_done;
};
inline constexpr int train_stopped_by_caller = 1000;  // above every signal's number (the ranks agree on the largest)

// `scribe train` (tools/train.cpp).
int train_command(int argc, char** argv, cpu::communicator* comm, const train_observer* observer = nullptr);
// `scribe classify` and `scribe embed` (tools/encode.cpp).
int classify_command(int argc, char** argv, cpu::communicator* comm);
int embed_command(int argc, char** argv, cpu::communicator* comm);
// `scribe tokenize` (tools/tokenize.cpp).
int tokenize_command(int argc, char** argv);
// `scribe export-hlo` of an encoder folder (tools/encode.cpp), and of a decoder
// folder (tools/scribe.cpp; `scribe compile` writes an artifact's graphs with it).
int export_encoder_hlo(const args& a);
int export_decoder_hlo(const args& a);
// `scribe compile` (tools/compile.cpp).
int compile_command(int argc, char** argv);

// `scribe ARGS...` (argv[0] is the program's name) on `comm`'s ranks (nullptr:
// tensor-parallel ranks as threads of this process): the command's exit status;
// its errors are thrown (tools/scribe.cpp). The Python package runs commands so.
int command(int argc, char** argv, cpu::communicator* comm = nullptr);
// The program: command() in the MPI world when mpirun started it, its errors
// printed ("scribe: ..."), exit status 1 (tools/main.cpp calls it).
int main(int argc, char** argv);

}  // namespace scribe::cli
