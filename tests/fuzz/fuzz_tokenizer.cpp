// libFuzzer target: the tokenizer's loaders and its encoder. The first byte of
// the input picks what the rest is (byte % 3):
//   0  a tokenizer.json; when it loads, a fixed text and the input itself are
//      encoded and the ids decoded
//   1  vocab.json, a NUL byte, merges.txt; the same when they load
//   2  text, encoded by the tokenizer in tests/data/tokenizer (SCRIBE_TEST_DATA)
//      and by the family tokenizers in tests/data/tokenizers:
//      decode(encode(text)) must give the text back, and GPT-2's pattern must
//      split it into pieces that spell it
// Malformed files are refused with scribe::error, which is fine (its message must
// carry none of the input's control characters); anything else (another
// exception, a crash, a sanitizer report, a broken round trip) fails. Both kinds
// of file are read as io::parse_json reads JSON: a tokenizer.json or vocab.json
// that loads must be one parse_json accepts (nested at most json_depth_limit
// levels, no key twice in one object).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <scribe/io/json.hpp>
#include <scribe/io/tokenizer.hpp>

#include "fuzz_common.hpp"

namespace {

// A JSON file the tokenizer loaded: io::parse_json must accept it too.
void json_accepted(std::string_view text, const char* name) {
    try {
        (void)scribe::io::parse_json(text, name);
    } catch (const scribe::error& e) {
        std::fprintf(stderr, "fuzz: the tokenizer loaded %s, which io::parse_json refuses: %s\n", name, e.what());
        fuzz::broken("the tokenizer reads JSON that io::parse_json refuses (too deep, or a key twice)");
    }
}

void exercise(const scribe::io::tokenizer& tok, std::string_view input) {
    for (const std::string_view text : {std::string_view("Hello, world! It's 2024 \xf0\x9f\x99\x82 <|endoftext|>  \n"), input}) {
        try {
            const auto ids = tok.encode(text);
            for (const auto id : ids)
                if (id < 0 || id >= tok.vocab_size()) std::abort();
            (void)tok.decode(ids);
            (void)tok.decode_text(ids);
            const auto with = tok.encode_with_specials(text);
            if (with.size() != ids.size() + tok.special_prefix().size() + tok.special_suffix().size()) std::abort();
        } catch (const scribe::error&) {  // e.g. a byte the vocabulary has no token for
        }
    }
    const std::vector<std::int32_t> ids = {0, tok.vocab_size() - 1};
    (void)tok.decode(ids);
    for (std::int32_t id = 0; id < tok.vocab_size() && id < 64; ++id)
        if (tok.id_of(tok.token(id)) != id) std::abort();
}

const scribe::io::tokenizer& reference() {
    static const auto tok = scribe::io::tokenizer::from_json(std::string(SCRIBE_TEST_DATA) + "/tokenizer/tokenizer.json");
    return tok;
}

// The tokenizers of the other decoder families (tests/data/tokenizers).
const std::vector<scribe::io::tokenizer>& families() {
    static const auto toks = [] {
        std::vector<scribe::io::tokenizer> v;
        for (const char* kind : {"llama2", "mistral", "metaspace", "llama3"})
            v.push_back(scribe::io::tokenizer::from_folder(std::string(SCRIBE_TEST_DATA) + "/tokenizers/" + kind));
        return v;
    }();
    return toks;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 3) {
            case 0:
                exercise(scribe::io::tokenizer::parse_json(rest, "fuzz/tokenizer.json"), rest);
                json_accepted(rest, "fuzz/tokenizer.json");
                break;
            case 1: {
                const auto nul = rest.find('\0');
                const auto vocab = rest.substr(0, nul);
                const auto merges = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
                exercise(scribe::io::tokenizer::parse_vocab_merges(vocab, merges, "fuzz/vocab.json", "fuzz/merges.txt"), rest);
                json_accepted(vocab, "fuzz/vocab.json");
                break;
            }
            default: {
                const auto& tok = reference();
                if (tok.decode(tok.encode(rest)) != rest) std::abort();
                std::string spelled;
                for (const auto piece : scribe::io::tokenizer::pre_tokenize(rest)) {
                    if (piece.empty()) std::abort();
                    spelled += piece;
                }
                if (spelled != rest) std::abort();
                // Every family's tokenizer: ids in range, decoding never fails; Llama
                // 3's byte-level BPE gives back the bytes exactly.
                for (const auto& t : families()) exercise(t, rest);
                const auto& llama3 = families().back();
                if (llama3.decode(llama3.encode(rest)) != rest) std::abort();
            }
        }
    } catch (const scribe::error& e) {
        // A refused file: the expected outcome for most inputs.
        fuzz::check_message(e);
    }
    return 0;
}
