// scribe/models/common.hpp — what every decoder family shares without the DSL:
// the shapes of a graph, the weight list's entries, reading config.json with
// errors that name the file and the field, and the KV cache each rank holds.
// (models/blocks.hpp has the shared graph pieces; models/<family>_config.hpp
// each family's config.json and weights.)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/checked.hpp"
#include "../core/error.hpp"
#include "../io/json.hpp"
#include "../graph/node.hpp"
#include "../ops/quantize.hpp"
#include "../parallel/mesh.hpp"

namespace scribe::models {

// How a model's matrices are stored: plain (the run's float dtype), q8 or q4
// (ops/quantize.hpp).
using scribe::weight_format;

// The shapes of one graph.
struct graph_shape {
    std::int64_t batch = 1;
    std::int64_t seq = 1;       // the prompt bucket (prefill); 1 (decode), or the tokens a verify graph checks
    std::int64_t capacity = 1;  // positions the KV cache holds
    bool decode = false;
    bool last_only = true;      // prefill: logits of each prompt's last token only
    std::int64_t tp = 1;        // tensor-parallel degree: the graph is one rank's
    std::int64_t dp = 1;        // copies of the tensor-parallel group (a dp x tp mesh, parallel::mesh::replicas)
    bool kv_cache = true;       // false: no cache inputs or outputs (a training step's forward pass)
    // A training graph with the config's dropout: it takes the random key as
    // parameters dropout.key0 and dropout.key1 (u32 scalars; a new pair each
    // micro-batch gives new bits). Needs kv_cache = false.
    bool dropout = false;
    // The matrices' storage (q8 and q4: inference graphs only).
    weight_format weights = weight_format::plain;
};

// One weight: its name in the checkpoint (without the family's optional prefix,
// such as "transformer." or "model."), the shape the checkpoint stores, and the
// dims the graph reads it as. Under tensor parallelism the dimension `split`
// (empty: none, replicated) is divided over the ranks (parallel/weights.hpp cuts
// each rank's part).
//
// `init` says how training from scratch fills it, as Hugging Face's
// _init_weights does: from a normal distribution of standard deviation
// `scale` × the config's initializer_range (the padding row of a token
// embedding zero), or all zeros (biases), or all ones (norms' scales).
struct weight_init {
    enum class fill { normal, zeros, ones };
    fill kind = fill::normal;
    double scale = 1.0;                        // GPT-2's residual projections: 1 / sqrt(2 n_layer)
    std::optional<std::int64_t> zero_row{};    // a token embedding's padding row
};

struct weight_spec {
    std::string name;
    std::vector<std::int64_t> stored;
    shape dims;
    std::string split{};
    weight_init init{};
    // The dims a product contracts it over (q8/q4 blocks run along them): the last
    // stored dimension's, unless the declaration says otherwise.
    std::vector<std::string> in{};
};

// What every family's config has (its own names for them are read into these).
struct decoder_config {
    std::int64_t vocab_size = 0;
    std::int64_t n_positions = 0;  // the longest sequence: prompt and new tokens
    std::int64_t n_layer = 0;
    std::optional<std::int32_t> bos_token_id;
    // The tokens that end a text: config.json's eos_token_id, one id or a list
    // (Llama 3's ends at <|end_of_text|> and <|eot_id|>).
    std::vector<std::int32_t> eos_token_ids;
    // The token embedding's padding row where the family's embedding has one
    // (nn.Embedding's padding_idx = pad_token_id: OPT, LLaMA, Mistral): training
    // passes it no gradient (models::step::token_rows).
    std::optional<std::int32_t> padding_idx;
    // The standard deviation of the normal distribution training from scratch
    // draws weights from (initializer_range; OPT's init_std).
    double initializer_range = 0.02;
    // Dropout probabilities in training (graph_shape::dropout), as config.json
    // says: after the embeddings, on the attention probabilities, and on each
    // block's output before the residual sum.
    struct dropout_rates {
        double embedding = 0, attention = 0, residual = 0;
    } dropout;
};

// j[key]: a token id, or a list of them (eos_token_id), each in [0, vocab); none
// when the key is absent or null. `fail` reports what is wrong (and throws).
template <class Fail>
std::vector<std::int32_t> token_ids(const nlohmann::json& j, const char* key, std::int64_t vocab, Fail&& fail) {
    std::vector<std::int32_t> out;
    if (!j.is_object() || !j.contains(key) || j[key].is_null()) return out;
    const auto& v = j[key];
    const auto bad = [&](const std::string& got) {
        fail("field `" + std::string(key) + "` must be a token id below vocab_size " + std::to_string(vocab) +
             " or a list of them, got " + got);
    };
    if (v.is_array() && (v.empty() || v.size() > 1024)) bad(io::shown(v));
    const auto list = v.is_array() ? v : nlohmann::json::array({v});
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto& x = list[i];
        if (!x.is_number_integer() || x.get<std::int64_t>() < 0 || x.get<std::int64_t>() >= vocab)
            bad(v.is_array() ? io::shown(x) + " (entry " + std::to_string(i) + ")" : io::shown(x));
        out.push_back(static_cast<std::int32_t>(x.get<std::int64_t>()));
    }
    return out;
}

// generation_config.json's eos_token_id (one id or a list), which Hugging Face's
// generate() stops at in place of config.json's; none when the folder has no such
// file or field. Errors name the file and the field.
inline std::vector<std::int32_t> generation_eos(const std::filesystem::path& dir, std::int64_t vocab) {
    const auto path = dir / "generation_config.json";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !std::filesystem::is_symlink(path, ec)) return {};
    const auto j = io::read_json(path, 16u << 20, "the generation config");
    if (!j.is_object()) throw error(path.string() + ": not a JSON object");
    return token_ids(j, "eos_token_id", vocab, [&](const std::string& why) -> void { throw error(path.string() + ": " + why); });
}

// Reads config.json's fields, each error naming the file and the field.
class config_reader {
public:
    // Sizes, counts and token ids are at most this (token ids and positions are
    // s32 in the graphs); anything larger is refused before arithmetic sees it.
    static constexpr std::int64_t max_integer = 0x7fffffff;

    config_reader(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {
        if (!j_.is_object()) fail("not a JSON object");
    }

    [[noreturn]] void fail(const std::string& what) const { throw error(source_ + ": " + what); }
    bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
    const nlohmann::json& raw(const char* key) const { return j_[key]; }

    // The model_type must be one of `types` (when present).
    void model_type(std::initializer_list<const char*> types, const char* loader) const {
        if (!has("model_type")) return;
        for (const auto* t : types)
            if (j_["model_type"] == t) return;
        fail("model_type is " + io::shown(j_["model_type"]) + ", the " + loader + " loader reads " + list(types));
    }
    // A positive integer under the first of `keys` present, else `fallback`.
    std::int64_t integer(std::initializer_list<const char*> keys, std::optional<std::int64_t> fallback = std::nullopt) const {
        for (const auto* key : keys) {
            if (!has(key)) continue;
            const auto& v = j_[key];
            if (!v.is_number_integer() || v.get<std::int64_t>() <= 0 || v.get<std::int64_t>() > max_integer)
                fail("field `" + std::string(key) + "` must be a positive integer below 2^31, got " + io::shown(v));
            return v.get<std::int64_t>();
        }
        if (!fallback) fail("missing field `" + std::string(*keys.begin()) + "`");
        return *fallback;
    }
    std::int64_t integer(const char* key, std::optional<std::int64_t> fallback = std::nullopt) const {
        return integer({key}, fallback);
    }
    double positive(const char* key, double fallback) const {
        if (!has(key)) return fallback;
        if (!j_[key].is_number() || j_[key].get<double>() <= 0)
            fail("field `" + std::string(key) + "` must be a positive number, got " + io::shown(j_[key]));
        return j_[key].get<double>();
    }
    bool boolean(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        if (!j_[key].is_boolean()) fail("field `" + std::string(key) + "` must be true or false, got " + io::shown(j_[key]));
        return j_[key].get<bool>();
    }
    // A string that must be one of `allowed`.
    std::string choice(const char* key, const std::string& fallback, std::initializer_list<const char*> allowed) const {
        if (!has(key)) return fallback;
        if (!j_[key].is_string()) fail("field `" + std::string(key) + "` must be a string, got " + io::shown(j_[key]));
        const auto v = j_[key].get<std::string>();
        for (const auto* a : allowed)
            if (v == a) return v;
        fail(std::string(key) + " \"" + io::printable(v) + "\" is not supported (" + list(allowed) + ")");
    }
    // A boolean option only one value of which is supported; `why` says what is.
    void only(const char* key, bool supported, const char* why) const {
        if (has(key) && j_[key].is_boolean() && j_[key].get<bool>() != supported)
            fail(std::string(key) + " = " + io::shown(j_[key]) + " is not supported (" + why + ")");
    }
    // A token id below the vocabulary (or none). A list (several end tokens) gives its first.
    std::optional<std::int32_t> token(const char* key, std::int64_t vocab) const {
        const auto all = tokens(key, vocab);
        if (all.empty()) return std::nullopt;
        return all.front();
    }
    // A token id or a list of them (eos_token_id), each below vocab_size.
    std::vector<std::int32_t> tokens(const char* key, std::int64_t vocab) const {
        return token_ids(j_, key, vocab, [&](const std::string& why) { fail(why); });
    }
    // pad_token_id as nn.Embedding's padding_idx: a row of the table (negative
    // ones count from the end, as torch does), or none.
    std::optional<std::int32_t> padding_row(std::int64_t vocab) const {
        if (!has("pad_token_id")) return std::nullopt;
        const auto& v = j_["pad_token_id"];
        if (!v.is_number_integer() || v.get<std::int64_t>() < -vocab || v.get<std::int64_t>() >= vocab)
            fail("field `pad_token_id` must be a token id below vocab_size " + std::to_string(vocab) + " (or from -" +
                 std::to_string(vocab) + ", counted from the end), got " + io::shown(v));
        const auto p = v.get<std::int64_t>();
        return static_cast<std::int32_t>(p < 0 ? vocab + p : p);
    }
    // The fields every family shares, under its names for them.
    void common(decoder_config& c, std::initializer_list<const char*> positions, std::initializer_list<const char*> layers) const {
        c.vocab_size = integer("vocab_size");
        c.n_positions = integer(positions);
        c.n_layer = integer(layers);
        c.bos_token_id = token("bos_token_id", c.vocab_size);
        c.eos_token_ids = tokens("eos_token_id", c.vocab_size);
    }
    // A number in [0, max] (a probability with max 1), or `fallback`.
    double fraction(const char* key, double fallback, double max = 1.0) const {
        if (!has(key)) return fallback;
        const auto& v = j_[key];
        if (!v.is_number() || !(v.get<double>() >= 0) || v.get<double>() > max)
            fail("field `" + std::string(key) + "` must be a number from 0 to " + checked::shown(max) + ", got " + io::shown(v));
        return v.get<double>();
    }
    // `a` must divide by `b`.
    void divides(const char* a_name, std::int64_t a, const char* b_name, std::int64_t b) const {
        if (a % b)
            fail(std::string(a_name) + " " + std::to_string(a) + " is not divisible by " + b_name + " " + std::to_string(b));
    }

private:
    static std::string list(std::initializer_list<const char*> xs) {
        std::string s;
        for (const auto* x : xs) s += (s.empty() ? "\"" : ", \"") + std::string(x) + "\"";
        return s;
    }
    const nlohmann::json& j_;
    std::string source_;
};

// A model's config.json, parsed, or an error naming the file.
inline nlohmann::json read_config_json(const std::filesystem::path& file) {
    return io::read_json(file, io::config_file_limit, "the model's config");
}

// Reads and parses a config.json with Config::parse(json, source).
template <class Config>
Config load_config(const std::filesystem::path& file) {
    return Config::parse(read_config_json(file), file.string());
}

// Grouped-query attention under tensor parallelism: the key/value heads are split
// over the ranks with the query heads when the degree divides them; otherwise
// (fewer KV heads than ranks, say) every rank holds all of them — replicated KV
// heads — and picks those its query heads use.
inline bool kv_heads_split(std::int64_t kv_heads, std::int64_t degree) { return kv_heads % degree == 0; }
inline std::int64_t kv_heads_per_rank(std::int64_t kv_heads, std::int64_t degree) {
    return kv_heads_split(kv_heads, degree) ? kv_heads / degree : kv_heads;
}

// The KV cache one rank holds: a key and a value tensor per layer,
// [batch, cache, kv_heads of the rank, head_dim].
inline std::vector<shape> kv_cache_shapes(std::int64_t n_layer, std::int64_t kv_heads, std::int64_t head_dim,
                                          std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
    const shape one{{"batch", batch}, {"cache", capacity}, {"kv_heads", kv_heads_per_rank(kv_heads, degree)}, {"head_dim", head_dim}};
    return std::vector<shape>(static_cast<std::size_t>(2 * n_layer), one);
}

// Rotary position embeddings: which dims of a head rotate, in which layout, and
// the frequency of each rotating pair (rope_theta, and the rope_scaling options).
struct rope {
    enum class layout { half, interleaved };  // LLaMA's rotate-half; GPT-J's pairs (2i, 2i + 1)
    std::int64_t dims = 0;                     // rotating dims of a head (the first ones), even
    layout order = layout::half;
    double theta = 10000.0;
    std::string scaling = "default";           // or "linear", "llama3"
    double factor = 1.0;                       // linear, llama3
    double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
    std::int64_t original_positions = 8192;                // llama3

    // The angle per position of pair i, as Hugging Face computes it in float32:
    // 1 / theta^(2i / dims), then the scaling.
    double freq(std::int64_t i) const {
        const float e = static_cast<float>(2 * i) / static_cast<float>(dims);
        float v = 1.0f / std::pow(static_cast<float>(theta), e);
        if (scaling == "linear") {
            v = static_cast<float>(v / factor);
        } else if (scaling == "llama3") {
            const double pi = 3.141592653589793;
            const double wavelen = 2 * pi / v;
            const double low_wavelen = static_cast<double>(original_positions) / low_freq_factor;
            const double high_wavelen = static_cast<double>(original_positions) / high_freq_factor;
            if (wavelen > low_wavelen) {
                v = static_cast<float>(v / factor);
            } else if (wavelen >= high_wavelen) {  // between the two: blended
                const double smooth =
                    (static_cast<double>(original_positions) / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                v = static_cast<float>((1 - smooth) * v / factor + smooth * v);
            }
        }
        return v;
    }
    std::vector<double> inv_freq() const {
        std::vector<double> f;
        for (std::int64_t i = 0; i < dims / 2; ++i) f.push_back(freq(i));
        return f;
    }

    // Every frequency finite and positive: a theta or factor far out of range
    // would otherwise turn every logit into NaN. The unscaled frequencies fall
    // with i, and a scaled one lies between v / factor and v, so the first pair
    // and the last (unscaled, and divided by the factor) bound them all.
    void check(const config_reader& r) const {
        if (dims < 2) return;
        const auto last = dims / 2 - 1;
        const auto plain = rope{.dims = dims, .theta = theta}.freq(last);
        for (const auto f : {freq(0), freq(last), plain, static_cast<double>(static_cast<float>(plain / factor))})
            if (!std::isfinite(f) || !(f > 0))
                r.fail("rope parameters (theta " + checked::shown(theta) + ", scaling " + scaling + ", factor " +
                       checked::shown(factor) + ") give a rotary frequency of " + checked::shown(f) +
                       "; they must give finite, positive ones");
    }

    // Reads rope_theta and rope_scaling, or transformers 5's rope_parameters.
    static rope read(const config_reader& r, std::int64_t dims, layout order) {
        rope p{.dims = dims, .order = order};
        const nlohmann::json* s = nullptr;
        if (r.has("rope_parameters")) s = &r.raw("rope_parameters");
        else if (r.has("rope_scaling")) s = &r.raw("rope_scaling");
        p.theta = r.positive("rope_theta", p.theta);
        if (!s) return p.check(r), p;
        if (!s->is_object()) r.fail("rope settings must be an object, got " + io::shown(*s));
        auto number = [&](const char* key, double fallback) {
            if (!s->contains(key) || (*s)[key].is_null()) return fallback;
            if (!(*s)[key].is_number() || (*s)[key].get<double>() <= 0)
                r.fail("rope field `" + std::string(key) + "` must be a positive number, got " + io::shown((*s)[key]));
            return (*s)[key].get<double>();
        };
        p.theta = number("rope_theta", p.theta);
        const auto type = s->contains("rope_type") ? (*s)["rope_type"] : s->contains("type") ? (*s)["type"] : nlohmann::json("default");
        if (!type.is_string()) r.fail("rope_type must be a string, got " + io::shown(type));
        p.scaling = type.get<std::string>();
        if (p.scaling == "default") return p.check(r), p;
        if (p.scaling != "linear" && p.scaling != "llama3")
            r.fail("rope_type \"" + io::printable(p.scaling) + "\" is not supported (default, linear, llama3)");
        if (!s->contains("factor")) r.fail("rope scaling \"" + p.scaling + "\" needs a `factor`");
        p.factor = number("factor", 1.0);
        if (p.scaling == "llama3") {
            p.low_freq_factor = number("low_freq_factor", 1.0);
            p.high_freq_factor = number("high_freq_factor", 4.0);
            const auto original = number("original_max_position_embeddings", 8192);
            if (original != std::floor(original) || original > static_cast<double>(config_reader::max_integer))
                r.fail("rope field `original_max_position_embeddings` must be a whole number of positions below 2^31, got " +
                       checked::shown(original));
            p.original_positions = static_cast<std::int64_t>(original);
            if (p.high_freq_factor <= p.low_freq_factor)
                r.fail("rope scaling llama3 needs high_freq_factor > low_freq_factor");
        }
        p.check(r);
        return p;
    }
};

}  // namespace scribe::models
