// python/scribe/_native.cpp — the native half of the `scribe` Python package: the
// same headers the C++ library and the `scribe` program are made of, bound with
// pybind11. Nothing here computes or parses on its own: a Decoder is a
// runtime::decoder of the folder's family, a Tokenizer an io::tokenizer, and
// run_command() runs one of the program's commands in this process
// (scribe::cli::command, tools/). The Python half (__init__.py) turns texts and
// lists into token arrays and results into objects.
//
// The GIL is released while a model loads or runs, so other Python threads go
// on; a stream callback takes it back for each token. Ctrl-C stops generation
// at the next token and raises KeyboardInterrupt.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <scribe/runtime/training.hpp>

#include <scribe/io/encoder_tokenizer.hpp>
#include <scribe/io/tokenizer.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/decoder.hpp>
#include <scribe/runtime/encoder_text.hpp>
#include <scribe/runtime/model_dtype.hpp>

#include "_graph.hpp"
#include "cli.hpp"

namespace py = pybind11;
using namespace scribe;

namespace {

// ---- arrays handed to NumPy without a copy -------------------------------------

// A NumPy array that owns `v`'s buffer (moved, not copied), shaped `shape`.
template <class T>
py::array_t<T> hand_over(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
    auto* owner = new std::vector<T>(std::move(v));
    py::capsule free_it(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(shape, owner->data(), free_it);
}

template <class T>
py::array_t<T> hand_over(std::vector<T>&& v) {
    const auto n = static_cast<py::ssize_t>(v.size());
    return hand_over(std::move(v), {n});
}

// Token ids from a 1-D array-like of integers, checked: floats are refused rather
// than truncated, and ids that do not fit int32 rather than wrapped.
std::vector<std::int32_t> ids_of(const py::handle& h, const std::string& what) {
    const auto any = py::array::ensure(h);
    if (!any) throw py::type_error(what + " must be a sequence of integer token ids");
    const char kind = any.dtype().kind();
    if (any.size() > 0 && kind != 'i' && kind != 'u')
        throw py::type_error(what + " must hold integer token ids, not " + std::string(py::str(any.dtype())));
    if (any.ndim() != 1)
        throw py::value_error(what + " must be one sequence of token ids (1-D), got " + std::to_string(any.ndim()) + " dimensions");
    const auto a = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(any);
    std::vector<std::int32_t> out(static_cast<std::size_t>(a.size()));
    const auto* p = a.data();
    for (py::ssize_t i = 0; i < a.size(); ++i) {
        if (p[i] < INT32_MIN || p[i] > INT32_MAX)
            throw py::value_error(what + ": token id " + std::to_string(p[i]) + " at index " + std::to_string(i) + " is out of range");
        out[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(p[i]);
    }
    return out;
}

// A model folder that is not there, or is a file, named as the program names it.
void check_folder(const std::filesystem::path& dir) {
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec)) return;
    throw error("model folder " + io::shown_path(dir) + (std::filesystem::exists(dir, ec) ? " is a file, not a folder" : " does not exist") +
                " (give a Hugging Face model folder that holds config.json, or an artifact of scribe compile)");
}

// ---- a decoder of any family ---------------------------------------------------

struct decoder_info {
    std::string family, summary;
    std::int64_t vocab_size = 0, positions = 0;
};

// A batch stepped together (runtime::decoder<Family>::batch_sequence), whatever the family.
class any_batch {
public:
    virtual ~any_batch() = default;
    virtual std::vector<float> start(const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t room) = 0;
    virtual std::vector<float> step(std::span<const std::int32_t> tokens) = 0;
    virtual std::int64_t capacity() const = 0;
    virtual std::int64_t length(std::size_t row) const = 0;
};

template <class Family>
class batch_of final : public any_batch {
public:
    explicit batch_of(runtime::decoder<Family>& lm) : s_(lm) {}
    std::vector<float> start(const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t room) override { return s_.start(prompts, room); }
    std::vector<float> step(std::span<const std::int32_t> tokens) override { return s_.step(tokens); }
    std::int64_t capacity() const override { return s_.capacity(); }
    std::int64_t length(std::size_t row) const override { return s_.length(row); }

private:
    typename runtime::decoder<Family>::batch_sequence s_;
};

class any_decoder {
public:
    virtual ~any_decoder() = default;
    virtual const decoder_info& info() const = 0;
    virtual runtime::generation generate(const std::vector<std::vector<std::int32_t>>& prompts, const runtime::generate_options& o) = 0;
    virtual void check_prompts(const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t new_tokens) const = 0;
    virtual std::vector<std::vector<float>> prompt_logits(const std::vector<std::int32_t>& prompt) = 0;
    virtual std::unique_ptr<runtime::stepper> sequence() = 0;
    virtual std::unique_ptr<any_batch> batch_sequence() = 0;
    virtual const std::vector<std::int32_t>& eos_ids() const = 0;
    virtual py::dict describe() const = 0;
};

template <class Family>
class decoder_of final : public any_decoder {
public:
    decoder_of(const std::filesystem::path& dir, runtime::load_options o, const char* family) : lm_(dir, std::move(o)) {
        info_ = {family, Family::summary(lm_.model_config()), lm_.model_config().vocab_size, lm_.model_config().n_positions};
    }
    const decoder_info& info() const override { return info_; }
    runtime::generation generate(const std::vector<std::vector<std::int32_t>>& prompts, const runtime::generate_options& o) override {
        return lm_.generate(prompts, o);
    }
    void check_prompts(const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t new_tokens) const override {
        lm_.check_prompts(prompts, new_tokens);
    }
    std::vector<std::vector<float>> prompt_logits(const std::vector<std::int32_t>& prompt) override { return lm_.prompt_logits(prompt); }
    std::unique_ptr<runtime::stepper> sequence() override {
        return std::make_unique<typename runtime::decoder<Family>::sequence>(lm_);
    }
    std::unique_ptr<any_batch> batch_sequence() override { return std::make_unique<batch_of<Family>>(lm_); }
    const std::vector<std::int32_t>& eos_ids() const override { return lm_.eos_ids(); }
    py::dict describe() const override {
        py::dict d;
        d["family"] = info_.family;
        d["summary"] = info_.summary;
        d["folder"] = lm_.folder().string();
        d["tp"] = lm_.tp();
        d["dtype"] = runtime::model_dtype{lm_.type(), lm_.weight_format()}.label();
        d["buckets"] = lm_.buckets();
        d["vocab_size"] = info_.vocab_size;
        d["positions"] = info_.positions;
        d["eos_token_ids"] = lm_.eos_ids();
        d["weight_bytes"] = lm_.weight_bytes();
        d["converted_bytes"] = lm_.converted_bytes();
        d["resident_bytes"] = lm_.resident_bytes();
        d["packed_bytes"] = lm_.packed_bytes();
        d["presharded"] = lm_.presharded();
        if (const auto& art = lm_.compiled()) {
            py::dict c;
            c["tp"] = art->options.tp;
            c["dtype"] = art->options.dtype_name();
            c["buckets"] = art->options.buckets;
            c["batch"] = art->options.batch;
            c["machine"] = art->machine;
            c["key"] = art->key;
            c["source"] = art->source;
            d["compiled"] = c;
        } else {
            d["compiled"] = py::none();
        }
        return d;
    }

private:
    runtime::decoder<Family> lm_;
    decoder_info info_;
};

template <class Family>
constexpr const char* family_name() {
    if constexpr (std::is_same_v<Family, models::gpt2_family>) return "gpt2";
    else if constexpr (std::is_same_v<Family, models::gptj_family>) return "gptj";
    else if constexpr (std::is_same_v<Family, models::opt_family>) return "opt";
    else return "llama";
}

std::unique_ptr<any_decoder> open_decoder(const std::filesystem::path& dir, runtime::load_options o) {
    return models::with_family(dir, [&]<class Family>() -> std::unique_ptr<any_decoder> {
        return std::make_unique<decoder_of<Family>>(dir, std::move(o), family_name<Family>());
    });
}

// A Python call made while generation runs (a stream callback, the Ctrl-C check)
// that raises stops it; the exception is kept and raised once the model's
// threads are done.
struct python_errors {
    std::optional<py::error_already_set> pending;
    void raise() {
        if (pending) {
            auto e = std::move(*pending);
            pending.reset();
            throw e;
        }
    }
};

// ---- the Python classes ----------------------------------------------------------

class decoder_handle {
public:
    static decoder_handle open(const std::filesystem::path& dir, std::int64_t tp, std::optional<std::string> dtype_name,
                               std::optional<std::vector<std::int64_t>> buckets, unsigned threads, bool mmap, std::size_t memory_budget,
                               bool check_finite) {
        decoder_handle h;
        py::gil_scoped_release nogil;
        check_folder(dir);
        const auto compiled = runtime::is_artifact(dir) ? std::optional(runtime::artifact::read(dir)) : std::nullopt;
        runtime::load_options o;
        o.tp = tp > 0 ? tp : compiled ? compiled->options.tp : 1;
        const auto md = runtime::parse_model_dtype(dtype_name.value_or(runtime::default_model_dtype(dir, o.tp)), "dtype");
        o.type = md.type;
        o.weights = md.weights;
        o.threads = threads;
        if (buckets) o.buckets = *buckets;
        o.keep_mapped = mmap;
        o.memory_budget = memory_budget;
        o.check_finite = check_finite;
        h.model_ = open_decoder(dir, std::move(o));
        return h;
    }

    const decoder_info& info() const { return model_->info(); }
    const std::vector<std::int32_t>& eos_ids() const { return model_->eos_ids(); }
    py::dict describe() const { return model_->describe(); }

    // prompts: a list of 1-D integer arrays. Returns (tokens: list of int32 arrays, stats: dict).
    py::tuple generate(const py::list& prompts, std::int64_t max_new_tokens, double temperature, std::int64_t top_k, double top_p,
                       std::uint64_t seed, std::optional<std::vector<std::int32_t>> eos, bool stop_at_eos, std::int64_t vocab_limit,
                       std::optional<py::function> stream) {
        std::vector<std::vector<std::int32_t>> p;
        for (std::size_t i = 0; i < prompts.size(); ++i) p.push_back(ids_of(prompts[i], "prompt " + std::to_string(i)));
        runtime::generate_options o;
        o.max_new_tokens = max_new_tokens;
        o.sample = {.temperature = temperature, .top_k = top_k, .top_p = top_p, .seed = seed};
        o.stop_at_eos = stop_at_eos;
        if (eos) o.eos = *eos;
        o.vocab_limit = vocab_limit;
        python_errors errors;
        o.on_token = [&](std::size_t sequence, std::int32_t token) {
            py::gil_scoped_acquire gil;
            if (stream) {
                try {
                    const py::object r = (*stream)(sequence, token);
                    if (!r.is_none() && !r.cast<bool>()) return false;  // the callback returned False: stop
                } catch (py::error_already_set& e) {
                    errors.pending.emplace(std::move(e));
                    return false;
                }
            }
            if (PyErr_CheckSignals() != 0) {
                errors.pending.emplace();
                return false;
            }
            return true;
        };
        runtime::generation g;
        {
            py::gil_scoped_release nogil;
            g = model_->generate(p, o);
        }
        errors.raise();
        py::list tokens;
        for (auto& t : g.tokens) tokens.append(hand_over(std::move(t)));
        py::dict stats;
        stats["prompt_tokens"] = g.prompt_tokens;
        stats["bucket"] = g.bucket;
        stats["capacity"] = g.capacity;
        stats["prefill_seconds"] = g.prefill_seconds;
        stats["decode_seconds"] = g.decode_seconds;
        stats["decode_steps"] = g.decode_steps;
        stats["decode_graph_seconds"] = g.decode_graph_seconds;
        return py::make_tuple(tokens, stats);
    }

    void check_prompts(const py::list& prompts, std::int64_t new_tokens) const {
        std::vector<std::vector<std::int32_t>> p;
        for (std::size_t i = 0; i < prompts.size(); ++i) p.push_back(ids_of(prompts[i], "prompt " + std::to_string(i)));
        model_->check_prompts(p, new_tokens);
    }

    // Every position's logits of one prompt, [tokens, vocab] f32.
    py::array_t<float> logits(const py::handle& ids) {
        const auto prompt = ids_of(ids, "ids");
        std::vector<std::vector<float>> rows;
        {
            py::gil_scoped_release nogil;
            rows = model_->prompt_logits(prompt);
        }
        const auto V = static_cast<std::size_t>(info().vocab_size);
        std::vector<float> all(rows.size() * V);
        for (std::size_t t = 0; t < rows.size(); ++t) std::copy(rows[t].begin(), rows[t].end(), all.begin() + static_cast<std::ptrdiff_t>(t * V));
        return hand_over(std::move(all), {static_cast<py::ssize_t>(rows.size()), static_cast<py::ssize_t>(V)});
    }

    std::shared_ptr<any_decoder> model() const { return model_; }

private:
    std::shared_ptr<any_decoder> model_;
};

// One sequence stepped by hand (runtime::stepper): its KV cache stays inside
// Scribe. Keeps its decoder alive.
class sequence_handle {
public:
    explicit sequence_handle(const decoder_handle& d) : model_(d.model()), seq_(model_->sequence()) {}

    py::array_t<float> start(const py::handle& ids, std::int64_t room) {
        const auto prompt = ids_of(ids, "ids");
        std::vector<float> logits;
        {
            py::gil_scoped_release nogil;
            logits = seq_->start(prompt, room);
        }
        return hand_over(std::move(logits));
    }
    py::array_t<float> extend(const py::handle& ids) {
        const auto tokens = ids_of(ids, "ids");
        std::vector<float> logits;
        {
            py::gil_scoped_release nogil;
            logits = seq_->extend(tokens);
        }
        const auto V = model_->info().vocab_size;
        return hand_over(std::move(logits), {static_cast<py::ssize_t>(tokens.size()), static_cast<py::ssize_t>(V)});
    }
    void rewind(std::int64_t length) { seq_->rewind(length); }
    std::int64_t length() const { return seq_->length(); }
    std::int64_t capacity() const { return seq_->capacity(); }
    std::int64_t bucket() const { return seq_->bucket(); }

private:
    std::shared_ptr<any_decoder> model_;
    std::unique_ptr<runtime::stepper> seq_;
};

// ---- an encoder of any family ----------------------------------------------------

class any_encoder {
public:
    virtual ~any_encoder() = default;
    virtual std::vector<runtime::encoding> encode(const std::vector<runtime::text_input>& inputs, bool truncate) = 0;
    virtual const std::vector<std::string>& labels() const = 0;
    virtual bool has_classifier() const = 0;
    virtual std::int64_t hidden_size() const = 0;
    virtual py::dict describe() const = 0;
};

template <class Family>
class encoder_of final : public any_encoder {
public:
    encoder_of(const std::filesystem::path& dir, runtime::load_options o)
        : m_(dir, std::move(o)), tok_(io::encoder_tokenizer::from_folder(dir, m_.model_config().model_type)) {}
    std::vector<runtime::encoding> encode(const std::vector<runtime::text_input>& inputs, bool truncate) override {
        return runtime::encode_texts(m_, tok_, inputs, {.truncate = truncate, .on_truncate = {}, .truncate_hint = "truncate=True"});
    }
    const std::vector<std::string>& labels() const override { return m_.labels(); }
    bool has_classifier() const override { return m_.has_classifier(); }
    std::int64_t hidden_size() const override { return m_.hidden_size(); }
    py::dict describe() const override {
        const auto& c = m_.model_config();
        py::dict d;
        d["family"] = c.model_type;
        d["summary"] = Family::summary(c);
        d["folder"] = m_.folder().string();
        d["tp"] = m_.tp();
        d["dtype"] = std::string(name(m_.type()));
        d["buckets"] = m_.buckets();
        d["hidden_size"] = c.hidden;
        d["positions"] = c.n_positions;
        d["labels"] = m_.labels();
        d["classifier"] = m_.has_classifier();
        d["weight_bytes"] = m_.weight_bytes();
        d["resident_bytes"] = m_.resident_bytes();
        return d;
    }

private:
    runtime::encoder<Family> m_;
    io::encoder_tokenizer tok_;
};

class encoder_handle {
public:
    static encoder_handle open(const std::filesystem::path& dir, std::int64_t tp, std::optional<std::string> dtype_name,
                               std::optional<std::vector<std::int64_t>> buckets, unsigned threads, bool mmap) {
        encoder_handle h;
        py::gil_scoped_release nogil;
        check_folder(dir);
        runtime::load_options o;
        o.tp = tp > 0 ? tp : 1;
        const auto md = runtime::parse_model_dtype(dtype_name.value_or("f32"), "dtype");
        if (md.blocks()) throw error("dtype " + md.label() + ": encoders run in f32, f16 or bf16");
        o.type = md.type;
        o.threads = threads;
        if (buckets) o.buckets = *buckets;
        o.keep_mapped = mmap;
        h.model_ = models::with_encoder(dir, [&]<class Family>() -> std::unique_ptr<any_encoder> {
            return std::make_unique<encoder_of<Family>>(dir, std::move(o));
        });
        h.pooling_ = runtime::folder_pooling(dir).value_or("mean");
        return h;
    }

    // (mean [n, hidden], first [n, hidden], logits [n, labels] or None, scores [n, labels] or None, buckets [n])
    py::tuple encode(const std::vector<std::string>& texts, const std::optional<std::vector<std::string>>& pairs, bool truncate) {
        if (texts.empty()) throw py::value_error("no texts given");
        if (pairs && pairs->size() != texts.size())
            throw py::value_error(std::to_string(texts.size()) + " texts but " + std::to_string(pairs->size()) +
                                  " pairs: give one pair for every text, or none");
        std::vector<runtime::text_input> in;
        for (std::size_t i = 0; i < texts.size(); ++i) in.push_back({texts[i], pairs ? std::optional((*pairs)[i]) : std::nullopt});
        std::vector<runtime::encoding> out;
        {
            py::gil_scoped_release nogil;
            out = model_->encode(in, truncate);
        }
        const auto n = static_cast<py::ssize_t>(out.size());
        const auto H = model_->hidden_size();
        const auto L = static_cast<std::size_t>(model_->labels().size());
        std::vector<float> mean, first, logits;
        std::vector<double> scores;
        std::vector<std::int64_t> buckets;
        for (auto& e : out) {
            mean.insert(mean.end(), e.mean.begin(), e.mean.end());
            first.insert(first.end(), e.first.begin(), e.first.end());
            logits.insert(logits.end(), e.logits.begin(), e.logits.end());
            scores.insert(scores.end(), e.scores.begin(), e.scores.end());
            buckets.push_back(e.bucket);
        }
        const bool classified = model_->has_classifier();
        return py::make_tuple(hand_over(std::move(mean), {n, H}), hand_over(std::move(first), {n, H}),
                              classified ? py::object(hand_over(std::move(logits), {n, static_cast<py::ssize_t>(L)})) : py::object(py::none()),
                              classified ? py::object(hand_over(std::move(scores), {n, static_cast<py::ssize_t>(L)})) : py::object(py::none()),
                              hand_over(std::move(buckets)));
    }

    const std::vector<std::string>& labels() const { return model_->labels(); }
    bool has_classifier() const { return model_->has_classifier(); }
    std::int64_t hidden_size() const { return model_->hidden_size(); }
    const std::string& pooling() const { return pooling_; }
    py::dict describe() const {
        auto d = model_->describe();
        d["pooling"] = pooling_;
        return d;
    }

private:
    std::shared_ptr<any_encoder> model_;
    std::string pooling_;
};

std::string tokenizer_text(const io::tokenizer& t, const py::handle& ids, bool skip_special) {
    auto v = ids_of(ids, "ids");
    if (skip_special) {
        const auto pre = t.special_prefix(), suf = t.special_suffix();
        std::vector<std::int32_t> specials(pre.begin(), pre.end());
        specials.insert(specials.end(), suf.begin(), suf.end());
        if (const auto e = t.eos_id()) specials.push_back(*e);
        if (const auto b = t.bos_id()) specials.push_back(*b);
        std::erase_if(v, [&](std::int32_t id) { return std::find(specials.begin(), specials.end(), id) != specials.end(); });
    }
    return t.decode_text(v);
}

// A command line as main() gets it: `first` words (the program's name, maybe a
// command), then `words`; argv points into the strings it owns.
class command_line {
public:
    command_line(std::vector<std::string> first, const std::vector<std::string>& words) : text_(std::move(first)) {
        text_.insert(text_.end(), words.begin(), words.end());
        for (auto& w : text_) argv_.push_back(w.data());
        argv_.push_back(nullptr);
    }
    command_line(const command_line&) = delete;
    command_line& operator=(const command_line&) = delete;
    int argc() const { return static_cast<int>(text_.size()); }
    char** argv() { return argv_.data(); }

private:
    std::vector<std::string> text_;
    std::vector<char*> argv_;
};

// One of the program's commands (`scribe export-hlo ...` as {"export-hlo", ...}),
// run in this process with its ranks as threads; its errors are raised.
int run_command(const std::vector<std::string>& words) {
    command_line line({"scribe"}, words);
    int rc = 0;
    {
        py::gil_scoped_release nogil;
        rc = cli::command(line.argc(), line.argv());
        std::fflush(stdout);
        std::fflush(stderr);
    }
    return rc;
}

// "[scribe] what went wrong" -> "what went wrong": the exception's class says whose.

// A batch of sequences stepped together (runtime::decoder::batch_sequence): the
// transformers adapter's rows when they move one token at a time together.
class batch_handle {
public:
    explicit batch_handle(const decoder_handle& d) : model_(d.model()), batch_(model_->batch_sequence()) {}

    py::array_t<float> start(const py::list& prompts, std::int64_t room) {
        std::vector<std::vector<std::int32_t>> p;
        for (std::size_t i = 0; i < prompts.size(); ++i) p.push_back(ids_of(prompts[i], "prompt " + std::to_string(i)));
        std::vector<float> logits;
        {
            py::gil_scoped_release nogil;
            logits = batch_->start(p, room);
        }
        rows_ = static_cast<py::ssize_t>(p.size());
        return hand_over(std::move(logits), {rows_, static_cast<py::ssize_t>(model_->info().vocab_size)});
    }
    py::array_t<float> step(const py::handle& tokens) {
        const auto t = ids_of(tokens, "tokens");
        std::vector<float> logits;
        {
            py::gil_scoped_release nogil;
            logits = batch_->step(t);
        }
        return hand_over(std::move(logits), {rows_, static_cast<py::ssize_t>(model_->info().vocab_size)});
    }
    std::int64_t capacity() const { return batch_->capacity(); }
    std::int64_t length(std::size_t row) const { return batch_->length(row); }

private:
    std::shared_ptr<any_decoder> model_;
    std::unique_ptr<any_batch> batch_;
    py::ssize_t rows_ = 0;
};

// runtime::sample's choice of the next token, with its own generator: a
// Sampler made with generate's temperature, top_k, top_p and seed, given the
// same rows of logits in the same order, draws the tokens generate draws (the
// transformers adapter, scribe/hf.py, samples with it).
class sampler_handle {
public:
    sampler_handle(double temperature, std::int64_t top_k, double top_p, std::uint64_t seed)
        : s_{temperature, top_k, top_p, seed}, rng_(seed) {
        s_.check();
    }
    std::int32_t choose(const py::handle& logits) {
        const auto row = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(logits);
        if (!row || row.ndim() != 1) throw py::value_error("Sampler.choose takes one row of logits (a 1-D array of floats)");
        if (row.size() == 0) throw py::value_error("Sampler.choose: an empty row of logits");
        return runtime::sample(std::span<const float>(row.data(), static_cast<std::size_t>(row.size())), s_, rng_);
    }

private:
    runtime::sampling s_;
    std::mt19937_64 rng_;
};

// `scribe train WORDS...` in this process, as run_command runs it, with each
// step and validation reported to Python as a dict (on_step returning False,
// or raising, stops the run after that step with a checkpoint; what it raised
// is raised here). Returns the exit status and the run's result.
std::pair<int, py::dict> train_run(const std::vector<std::string>& words, const py::object& on_step, const py::object& on_eval) {
    command_line line({"scribe", "train"}, words);
    python_errors errors;
    py::dict result;
    cli::train_observer observer;
    observer.on_step = [&](const runtime::step_report& r) {
        py::gil_scoped_acquire gil;
        if (errors.pending || on_step.is_none()) return !errors.pending;
        py::dict d;
        d["step"] = r.step, d["total"] = r.total, d["epoch"] = r.epoch, d["loss"] = r.loss, d["grad_norm"] = r.grad_norm;
        d["lr"] = r.lr, d["tokens_per_s"] = r.tokens_per_s, d["seconds"] = r.seconds, d["eta"] = r.eta;
        try {
            const py::object go = on_step(d);
            return go.is_none() || go.cast<bool>();
        } catch (py::error_already_set& e) {
            errors.pending.emplace(std::move(e));
            return false;
        }
    };
    observer.on_eval = [&](const runtime::eval_report& e) {
        py::gil_scoped_acquire gil;
        if (errors.pending || on_eval.is_none()) return;
        py::dict d;
        d["step"] = e.step, d["loss"] = e.loss, d["perplexity"] = e.perplexity;
        try {
            on_eval(d);
        } catch (py::error_already_set& x) {
            errors.pending.emplace(std::move(x));
        }
    };
    observer.on_done = [&](const runtime::training_result& r) {
        py::gil_scoped_acquire gil;
        result["step"] = r.step, result["total"] = r.total, result["train_loss"] = r.train_loss, result["val_loss"] = r.val_loss;
        result["checkpoint"] = r.checkpoint.string(), result["seconds"] = r.seconds;
        result["stopped_by"] = r.stopped_by == cli::train_stopped_by_caller ? py::object(py::str("caller"))
                               : r.stopped_by                              ? py::object(py::int_(r.stopped_by))
                                                                           : py::object(py::none());
    };
    int rc = 0;
    {
        py::gil_scoped_release nogil;
        rc = cli::train_command(line.argc(), line.argv(), nullptr, &observer);
        std::fflush(stdout);
        std::fflush(stderr);
    }
    errors.raise();
    return {rc, result};
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "The native half of the scribe package (use the names scribe exports).";

    // Never destroyed: Python may still hold the class when the module's statics go.
    static auto* scribe_error = new py::exception<error>(m, "ScribeError", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const error& e) {
            PyErr_SetString(scribe_error->ptr(), cli::message_of(e).c_str());
        }
    });

    py::class_<decoder_handle>(m, "Decoder")
        .def_static("open", &decoder_handle::open, py::arg("path"), py::arg("tp"), py::arg("dtype"), py::arg("buckets"), py::arg("threads"),
                    py::arg("mmap"), py::arg("memory_budget"), py::arg("check_finite"))
        .def_property_readonly("family", [](const decoder_handle& d) { return d.info().family; })
        .def_property_readonly("summary", [](const decoder_handle& d) { return d.info().summary; })
        .def_property_readonly("vocab_size", [](const decoder_handle& d) { return d.info().vocab_size; })
        .def_property_readonly("positions", [](const decoder_handle& d) { return d.info().positions; })
        .def_property_readonly("eos_token_ids", &decoder_handle::eos_ids)
        .def("describe", &decoder_handle::describe)
        .def("generate", &decoder_handle::generate, py::arg("prompts"), py::arg("max_new_tokens"), py::arg("temperature"), py::arg("top_k"),
             py::arg("top_p"), py::arg("seed"), py::arg("eos"), py::arg("stop_at_eos"), py::arg("vocab_limit"), py::arg("stream"))
        .def("check_prompts", &decoder_handle::check_prompts, py::arg("prompts"), py::arg("new_tokens"))
        .def("logits", &decoder_handle::logits, py::arg("ids"));

    py::class_<sequence_handle>(m, "Sequence")
        .def(py::init<const decoder_handle&>(), py::arg("decoder"))
        .def("start", &sequence_handle::start, py::arg("ids"), py::arg("room"))
        .def("extend", &sequence_handle::extend, py::arg("ids"))
        .def("rewind", &sequence_handle::rewind, py::arg("length"))
        .def_property_readonly("length", &sequence_handle::length)
        .def_property_readonly("capacity", &sequence_handle::capacity)
        .def_property_readonly("bucket", &sequence_handle::bucket);

    py::class_<batch_handle>(m, "BatchSequence")
        .def(py::init<const decoder_handle&>(), py::arg("decoder"))
        .def("start", &batch_handle::start, py::arg("prompts"), py::arg("room"))
        .def("step", &batch_handle::step, py::arg("tokens"))
        .def_property_readonly("capacity", &batch_handle::capacity)
        .def("length", &batch_handle::length, py::arg("row"));

    py::class_<sampler_handle>(m, "Sampler")
        .def(py::init<double, std::int64_t, double, std::uint64_t>(), py::arg("temperature"), py::arg("top_k"), py::arg("top_p"),
             py::arg("seed"))
        .def("choose", &sampler_handle::choose, py::arg("logits"));

    py::class_<encoder_handle>(m, "Encoder")
        .def_static("open", &encoder_handle::open, py::arg("path"), py::arg("tp"), py::arg("dtype"), py::arg("buckets"), py::arg("threads"),
                    py::arg("mmap"))
        .def("encode", &encoder_handle::encode, py::arg("texts"), py::arg("pairs"), py::arg("truncate"))
        .def_property_readonly("labels", &encoder_handle::labels)
        .def_property_readonly("has_classifier", &encoder_handle::has_classifier)
        .def_property_readonly("hidden_size", &encoder_handle::hidden_size)
        .def_property_readonly("pooling", &encoder_handle::pooling)
        .def("describe", &encoder_handle::describe);

    py::class_<io::tokenizer>(m, "Tokenizer")
        .def_static("open", [](const std::filesystem::path& dir) { return io::tokenizer::from_folder(dir); }, py::arg("path"))
        .def(
            "encode",
            [](const io::tokenizer& t, const std::string& text, bool specials) {
                return hand_over(specials ? t.encode_with_specials(text) : t.encode(text));
            },
            py::arg("text"), py::arg("add_special_tokens"))
        .def("decode", &tokenizer_text, py::arg("ids"), py::arg("skip_special_tokens"))
        .def("decode_bytes", [](const io::tokenizer& t, const py::handle& ids) { return py::bytes(t.decode(ids_of(ids, "ids"))); },
             py::arg("ids"))
        .def(
            "continuation",
            [](const io::tokenizer& t, const py::handle& prompt, const py::handle& made) {
                return t.continuation(ids_of(prompt, "prompt"), ids_of(made, "made"), true);
            },
            py::arg("prompt"), py::arg("made"))
        .def(
            "end_tokens", [](const io::tokenizer& t, std::vector<std::int32_t> model_eos) { return t.end_tokens(std::move(model_eos)); },
            py::arg("model_eos"))
        .def_property_readonly("vocab_size", &io::tokenizer::vocab_size)
        .def_property_readonly("eos_token_id", &io::tokenizer::eos_id)
        .def_property_readonly("bos_token_id", &io::tokenizer::bos_id)
        .def("token_to_id", [](const io::tokenizer& t, const std::string& s) { return t.id_of(s); }, py::arg("token"));

    bind_graph(m);

    m.def("run_command", &run_command, py::arg("words"));
    m.def("train", &train_run, py::arg("words"), py::arg("on_step"), py::arg("on_eval"));
    m.def("supported_model_types", [] { return std::string(models::supported_types); });
}
