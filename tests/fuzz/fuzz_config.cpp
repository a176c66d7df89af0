// libFuzzer target: config.json as every family reads it. Each input is parsed by
// io::parse_json (as config::load does: depth-limited, duplicate keys refused)
// and, when it is JSON, given to each family's config::parse: GPT-2, OPT, GPT-J
// and LLaMA (which reads Mistral too), and the encoders (BERT, RoBERTa,
// DistilBERT). Each family either refuses it with
// scribe::error (whose message carries none of the input's control characters)
// or reads a config a model can be built from:
//   - a positive, finite initializer_range, dropout rates in [0, 1], a padding
//     row inside the table;
//   - every extent positive and at most 2^31 - 1 (a default derived from another
//     field, GPT-2's and GPT-J's n_inner = 4 * n_embd, at most 4 times that);
//   - the divisibility the family needs (hidden by heads; LLaMA: heads by KV
//     heads, an even head_dim), token ids below the vocabulary, a positive
//     epsilon, GPT-J's rotary_dim even and at most head_dim, LLaMA's sliding
//     window below the positions, the rope settings positive and every rotary
//     frequency finite and positive;
//   - for a config of at most 64 layers: weights() lists the family's count of
//     tensors (fixed ones + layers * per-layer ones), each name once, each
//     stored extent positive, and the dims the graphs read it as hold as many
//     elements as the stored shape; cache_shapes() gives 2 per layer, with the
//     heads a rank holds; check_tp() accepts a degree only when it divides the
//     dimensions it splits; parallel::plan() (scribe plan's memory per rank)
//     either refuses the sizes or counts 4 bytes per stored element at degree 1
//     and no more per rank at degrees 2, 3, 4 and 8.
// Configs with more layers are only parsed (weights() would list them all).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <scribe/io/json.hpp>
#include <scribe/models/bert.hpp>
#include <scribe/models/gpt2.hpp>
#include <scribe/models/gptj.hpp>
#include <scribe/models/llama.hpp>
#include <scribe/models/opt.hpp>
#include <scribe/parallel/weights.hpp>

#include "fuzz_common.hpp"

namespace {

using fuzz::require;
constexpr std::int64_t max_integer = 0x7fffffff;
constexpr std::int64_t small_layers = 64;  // weights(), cache_shapes() and plan() up to this many layers

bool extent(std::int64_t v) { return v > 0 && v <= max_integer; }

void check_common(const scribe::models::decoder_config& c) {
    require(extent(c.vocab_size) && extent(c.n_positions) && extent(c.n_layer), "vocab_size, positions and layers in 1..2^31-1");
    require(!c.bos_token_id || (*c.bos_token_id >= 0 && *c.bos_token_id < c.vocab_size), "a token id below vocab_size");
    require(c.eos_token_ids.size() <= 1024, "at most 1024 end tokens");
    for (const auto t : c.eos_token_ids) require(t >= 0 && t < c.vocab_size, "end token ids below vocab_size");
    require(!c.padding_idx || (*c.padding_idx >= 0 && *c.padding_idx < c.vocab_size), "a padding row of the table");
    require(c.initializer_range > 0 && std::isfinite(c.initializer_range), "a positive, finite initializer_range");
    for (const double p : {c.dropout.embedding, c.dropout.attention, c.dropout.residual})
        require(p >= 0 && p <= 1, "dropout probabilities in [0, 1]");
}

// The elements of a shape, or 0 when the product does not fit in 127 bits.
unsigned __int128 elements(const auto& extents, auto get) {
    unsigned __int128 n = 1;
    for (const auto& e : extents) {
        const auto x = get(e);
        if (x <= 0) return 0;
        if (__builtin_mul_overflow(n, static_cast<unsigned __int128>(x), &n)) return 0;
    }
    return n;
}

void check_weights(const std::vector<scribe::models::weight_spec>& w, std::size_t expected) {
    require(w.size() == expected, "weights() lists the family's count of tensors");
    std::set<std::string_view> names;
    for (const auto& s : w) {
        require(!s.name.empty() && names.insert(s.name).second, "each weight named once");
        require(!s.stored.empty() && !s.dims.empty(), "a weight has a shape");
        const auto stored = elements(s.stored, [](std::int64_t e) { return e; });
        const auto read = elements(s.dims, [](const scribe::dim_extent& d) { return d.extent; });
        require(stored != 0, "a weight's stored extents are positive");
        require(stored == read, "a weight's dims hold as many elements as its stored shape");
        if (!s.split.empty()) {
            bool found = false;
            for (const auto& d : s.dims) found = found || d.name == s.split;
            require(found, "a weight's split dimension is one of its dims");
        }
    }
}

// check_tp(degree) accepts exactly the degrees dividing `divided`; cache_shapes
// gives a key and a value per layer with the KV heads one rank holds; the memory
// plan (scribe plan's) is refused with scribe::error or counts, at degree 1, every
// stored element, and at a higher degree no more than that per rank.
// (check_tp, cache_shapes and weights are the family's, found by argument-
// dependent lookup from its config type.)
template <class Config>
void check_parallel(const Config& c, std::initializer_list<std::int64_t> divided, std::int64_t kv_heads, std::int64_t head_dim) {
    const auto t = scribe::dtype::f32;
    std::optional<std::uint64_t> whole;  // the degree-1 plan's weight bytes
    for (const std::int64_t degree : {1, 2, 3, 4, 8}) {
        bool divides = true;
        for (const auto x : divided) divides = divides && x % degree == 0;
        bool accepted = true;
        try {
            check_tp(c, degree);
        } catch (const scribe::error& e) {
            fuzz::check_message(e);
            accepted = false;
        }
        require(accepted == divides, "check_tp accepts exactly the degrees that divide the split dimensions");
        if (!accepted) continue;
        const auto caches = cache_shapes(c, 2, 16, degree);
        require(caches.size() == static_cast<std::size_t>(2 * c.n_layer), "cache_shapes: a key and a value per layer");
        const auto per_rank = kv_heads % degree == 0 ? kv_heads / degree : kv_heads;
        for (const auto& s : caches) {
            require(s.size() == 4 && s[0].extent == 2 && s[1].extent == 16, "a cache is [batch, capacity, heads, head_dim]");
            require(s[2].extent == per_rank && s[3].extent == head_dim, "a cache holds the rank's KV heads of head_dim");
        }
        const auto specs = weights(c, degree);
        try {
            const auto p = scribe::parallel::plan(specs, caches, t, degree);
            require(p.total() == p.weights + p.kv_cache, "plan: the total is weights and cache");
            if (degree == 1) {
                unsigned __int128 stored = 0;
                for (const auto& s : specs) stored += elements(s.stored, [](std::int64_t e) { return e; });
                require(stored * 4 == p.weights, "plan: at degree 1, 4 bytes for every stored element");
                whole = p.weights;
            } else if (whole) {
                require(p.weights <= *whole, "plan: a rank holds at most all the weights");
            }
        } catch (const scribe::error& e) {
            fuzz::check_message(e);
        }
    }
}

void check_rope(const scribe::models::rope& r, std::int64_t head_dim) {
    require(r.dims > 0 && r.dims % 2 == 0 && r.dims <= head_dim, "rotary dims even, positive, at most head_dim");
    require(r.theta > 0 && r.factor > 0, "rope theta and factor positive");
    require(r.scaling == "default" || r.scaling == "linear" || r.scaling == "llama3", "a known rope scaling");
    if (r.scaling == "llama3") require(r.high_freq_factor > r.low_freq_factor, "llama3: high_freq_factor > low_freq_factor");
    if (r.dims > 4096) return;
    const auto f = r.inv_freq();
    require(f.size() == static_cast<std::size_t>(r.dims / 2), "a frequency per rotating pair");
    for (const auto x : f) require(std::isfinite(x) && x > 0, "rotary frequencies finite and positive");
}

void gpt2(const nlohmann::json& j) {
    namespace m = scribe::models::gpt2;
    const auto c = m::config::parse(j, "fuzz/config.json");
    check_common(c);
    require(extent(c.n_embd) && extent(c.n_head) && c.n_inner > 0 && c.n_inner <= 4 * max_integer, "GPT-2 extents");
    require(c.n_embd % c.n_head == 0 && c.head_dim() > 0, "GPT-2: n_embd divisible by n_head");
    require(c.layer_norm_epsilon > 0, "GPT-2: positive epsilon");
    if (c.n_layer > small_layers) return;
    check_weights(m::weights(c), static_cast<std::size_t>(4 + 12 * c.n_layer));
    check_parallel(c, {c.n_head, c.n_inner}, c.n_head, c.head_dim());
}

void opt(const nlohmann::json& j) {
    namespace m = scribe::models::opt;
    const auto c = m::config::parse(j, "fuzz/config.json");
    check_common(c);
    require(extent(c.hidden_size) && extent(c.n_head) && extent(c.ffn_dim) && extent(c.word_embed_proj_dim), "OPT extents");
    require(c.hidden_size % c.n_head == 0 && c.head_dim() > 0, "OPT: hidden_size divisible by the heads");
    require(!c.final_layer_norm || c.layer_norm_before, "OPT: a final layer norm only with pre-LN");
    if (c.n_layer > small_layers) return;
    check_weights(m::weights(c), static_cast<std::size_t>(2 + (c.projected() ? 2 : 0) + 16 * c.n_layer + (c.final_layer_norm ? 2 : 0)));
    check_parallel(c, {c.n_head, c.ffn_dim}, c.n_head, c.head_dim());
}

void gptj(const nlohmann::json& j) {
    namespace m = scribe::models::gptj;
    const auto c = m::config::parse(j, "fuzz/config.json");
    check_common(c);
    require(extent(c.n_embd) && extent(c.n_head) && c.n_inner > 0 && c.n_inner <= 4 * max_integer, "GPT-J extents");
    require(c.n_embd % c.n_head == 0 && c.head_dim() > 0, "GPT-J: n_embd divisible by n_head");
    require(c.layer_norm_epsilon > 0, "GPT-J: positive epsilon");
    require(c.rope.order == scribe::models::rope::layout::interleaved, "GPT-J: interleaved rotary pairs");
    check_rope(c.rope, c.head_dim());
    if (c.n_layer > small_layers) return;
    check_weights(m::weights(c), static_cast<std::size_t>(5 + 10 * c.n_layer));
    check_parallel(c, {c.n_head, c.n_inner}, c.n_head, c.head_dim());
}

void llama(const nlohmann::json& j) {
    namespace m = scribe::models::llama;
    const auto c = m::config::parse(j, "fuzz/config.json");
    check_common(c);
    require(c.model_type == "llama" || c.model_type == "mistral", "LLaMA: model_type llama or mistral");
    require(extent(c.hidden_size) && extent(c.intermediate_size) && extent(c.n_head) && extent(c.n_kv_head) && extent(c.head_dim),
            "LLaMA extents");
    require(c.n_head % c.n_kv_head == 0, "LLaMA: heads divisible by KV heads");
    require(c.head_dim % 2 == 0, "LLaMA: even head_dim");
    if (!j.contains("head_dim") || j["head_dim"].is_null())
        require(c.hidden_size % c.n_head == 0 && c.head_dim == c.hidden_size / c.n_head,
                "LLaMA: without head_dim, hidden_size divisible by the heads, head_dim their quotient");
    require(c.rms_norm_eps > 0, "LLaMA: positive epsilon");
    require(c.sliding_window >= 0 && c.sliding_window < c.n_positions, "LLaMA: a sliding window below the positions (0: none)");
    require(c.rope.order == scribe::models::rope::layout::half && c.rope.dims == c.head_dim, "LLaMA: every dim of a head rotates");
    check_rope(c.rope, c.head_dim);
    if (c.n_layer > small_layers) return;
    const std::size_t per_layer = 9 + (c.attention_bias ? 4 : 0);
    check_weights(m::weights(c), 2 + per_layer * static_cast<std::size_t>(c.n_layer) + (c.tie_word_embeddings ? 0 : 1));
    check_parallel(c, {c.n_head, c.intermediate_size}, c.n_kv_head, c.head_dim);
}

}  // namespace

// The encoders (BERT, RoBERTa, DistilBERT): extents, divisibility, positions after
// RoBERTa's offset, a label per classifier output; weights() lists 4 or 5 fixed
// tensors, 16 per layer and 4 for a classifier; check_tp accepts exactly the
// degrees dividing the heads and the MLP width.
void encoder(const nlohmann::json& j) {
    namespace m = scribe::models::bert;
    const auto c = m::config::parse(j, "fuzz/config.json");
    check_common(c);
    require(extent(c.hidden) && extent(c.n_head) && extent(c.intermediate) && extent(c.position_rows), "encoder extents");
    require(c.hidden % c.n_head == 0 && c.head_dim() > 0, "encoder: hidden divisible by the heads");
    require(c.n_positions > 0 && c.n_positions + c.position_offset == c.position_rows, "encoder: positions after the offset");
    require(c.type_vocab_size >= 0 && c.type_vocab_size <= max_integer, "encoder: token types");
    require(c.classifier == m::config::head::none || (c.num_labels() >= 1 && c.num_labels() <= 100000), "encoder: labels");
    require(c.layer_norm_eps > 0, "encoder: positive epsilon");
    if (c.n_layer > small_layers) return;
    const std::size_t fixed = (c.type_vocab_size ? 5 : 4) + (c.classifier == m::config::head::classifier ? 4 : 0);
    check_weights(m::weights(c), fixed + static_cast<std::size_t>(16 * c.n_layer));
    for (const std::int64_t degree : {1, 2, 3, 4, 8}) {
        bool accepted = true;
        try {
            m::check_tp(c, degree);
        } catch (const scribe::error& e) {
            fuzz::check_message(e);
            accepted = false;
        }
        require(accepted == (c.n_head % degree == 0 && c.intermediate % degree == 0),
                "encoder: check_tp accepts exactly the degrees that divide the heads and the MLP width");
    }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    nlohmann::json j;
    try {
        j = scribe::io::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
    } catch (const scribe::error& e) {  // not JSON, too deep, a key twice: the json target's business
        fuzz::check_message(e);
        return 0;
    }
    for (auto* family : {gpt2, opt, gptj, llama, encoder}) {
        try {
            family(j);
        } catch (const scribe::error& e) {
            // A refused config: the expected outcome for most inputs.
            fuzz::check_message(e);
        }
    }
    return 0;
}
