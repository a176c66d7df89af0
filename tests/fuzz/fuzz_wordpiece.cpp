// libFuzzer target: the encoders' tokenizers (io/wordpiece.hpp,
// io/encoder_tokenizer.hpp). The first byte of the input picks what the rest is
// (byte % 3):
//   0  a WordPiece tokenizer.json; when it loads, a fixed text and the input are
//      encoded (every id inside the vocabulary) and decoded
//   1  a vocab.txt (tokenizer_config.json's defaults: lowercased, accents
//      stripped); the same
//   2  text A, a NUL byte, text B: the pair through the tiny BERT's tokenizer
//      (tests/data/bert-tiny-cls, SCRIBE_TEST_DATA) in its template, truncated to
//      48 tokens: at most 48 ids, every one in the vocabulary, one token type each,
//      starting with [CLS] and ending with [SEP]; and BERT's normalizer gives
//      well-formed UTF-8
// Malformed files are refused with scribe::error (fine; its message must carry
// none of the input's control characters); anything else fails.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <scribe/io/encoder_tokenizer.hpp>
#include <scribe/io/json.hpp>
#include <scribe/io/wordpiece.hpp>

#include "fuzz_common.hpp"

namespace {

void exercise(const scribe::io::wordpiece& tok, std::string_view input) {
    for (const std::string_view text : {std::string_view("Hello, WORLD! Caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac [CLS] 3.14\t\n"), input}) {
        const auto ids = tok.encode(text);
        for (const auto id : ids)
            if (id < 0 || id >= tok.vocab_size()) std::abort();
        (void)tok.decode(ids);
        (void)tok.decode(ids, true);
    }
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto ch = scribe::io::detail::utf8_at(s, i);
        if (!ch.valid) return false;
        i += ch.len;
    }
    return true;
}

const scribe::io::encoder_tokenizer& reference() {
    static const auto tok = scribe::io::encoder_tokenizer::from_folder(std::string(SCRIBE_TEST_DATA) + "/bert-tiny-cls", "bert");
    return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 3) {
            case 0:
                exercise(scribe::io::wordpiece::from_json(scribe::io::parse_json(rest, "fuzz/tokenizer.json"), "fuzz/tokenizer.json"), rest);
                break;
            case 1:
                exercise(scribe::io::wordpiece::from_vocab_txt(rest, nlohmann::json(), "fuzz/vocab.txt"), rest);
                break;
            default: {
                const auto nul = rest.find('\0');
                const auto a = rest.substr(0, nul);
                const auto b = nul == std::string_view::npos ? std::optional<std::string_view>() : rest.substr(nul + 1);
                const auto& tok = reference();
                const auto e = tok.encode(a, b, 48);
                if (e.ids.size() > 48 || e.ids.size() != e.token_types.size() || e.ids.size() < 2) std::abort();
                for (const auto id : e.ids)
                    if (id < 0 || id >= tok.vocab_size()) std::abort();
                if (e.ids.front() != tok.single_template().front().ids.front() || e.ids.back() != tok.single_template().back().ids.front())
                    std::abort();
                const scribe::io::bert_normalizer n;
                if (!valid_utf8(n(a))) std::abort();
                (void)tok.decode(e.ids, true);
            }
        }
    } catch (const scribe::error& e) {
        fuzz::check_message(e);
    }
    return 0;
}
