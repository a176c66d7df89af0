// libFuzzer target: GPT-2's config.json reader (models::gpt2::config). Any input
// is either refused with scribe::error (not JSON, a missing or ill-typed field,
// an unsupported option) or read into a config whose sizes a model can be built
// from: every extent positive, n_embd divisible by n_head, token ids in the vocab.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <scribe/models/gpt2_config.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;  // not JSON: config::load reports that (tested in the unit tests)
    try {
        const auto c = scribe::models::gpt2::config::parse(j, "fuzz/config.json");
        if (c.vocab_size <= 0 || c.n_positions <= 0 || c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_inner <= 0)
            std::abort();
        if (c.n_embd % c.n_head != 0 || c.head_dim() <= 0) std::abort();
        if (!(c.layer_norm_epsilon > 0)) std::abort();
        for (auto t : {c.bos_token_id, c.eos_token_id})
            if (t && (*t < 0 || *t >= c.vocab_size)) std::abort();
        if (c.n_layer < 1000 && scribe::models::gpt2::weights(c).size() != static_cast<std::size_t>(4 + 12 * c.n_layer))
            std::abort();
    } catch (const scribe::error&) {
        // A refused config: the expected outcome for most inputs.
    }
    return 0;
}
