// io: the tokenizers of the decoder families beyond GPT-2. Every case in
// tests/data/tokenizers (made by scripts/reference/make_family_tokenizers.py with
// Hugging Face `tokenizers`: more than 200 texts in every script, emoji,
// combining marks, digit and whitespace runs, special tokens inside text) encodes
// to the reference's ids and decodes to the reference's text, for SentencePiece-
// style BPE in its three layouts (Llama 2's normalizer, Metaspace "first" without
// split, Metaspace "always" with split) and for Llama 3's byte-level BPE.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <scribe/io/tokenizer.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_family_tokenizers {

using namespace scribe;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path data_dir = fs::path(SCRIBE_TEST_DATA) / "tokenizers";

json read_json(const fs::path& p) {
    std::ifstream in(p);
    REQUIRE(in);
    return json::parse(in);
}

std::string shown(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

fs::path scratch(const std::string& name) {
    const auto d = fs::temp_directory_path() / ("scribe_test_family_tokenizers_" + std::to_string(::getpid())) / name;
    fs::create_directories(d.parent_path());
    return d;
}

void check_kind(const std::string& kind) {
    const auto tok = io::tokenizer::from_folder(data_dir / kind);
    const auto cases = read_json(data_dir / kind / "cases.json");
    REQUIRE(cases.size() >= 200);
    for (const auto& c : cases) {
        const std::string text = c["text"];
        const std::vector<std::int32_t> want = c["ids"];
        INFO(kind << ": text " << shown(text));
        const auto ids = tok.encode(text);
        CHECK(ids == want);
        CHECK(tok.decode_text(want) == c["decoded"].get<std::string>());
        CHECK(tok.encode_with_specials(text) == c["ids_with_specials"].get<std::vector<std::int32_t>>());
    }
}

}  // namespace

TEST_CASE("family tokenizers: Llama 2's SentencePiece BPE (Prepend and Replace normalizers) equals the reference") {
    check_kind("llama2");
}

TEST_CASE("family tokenizers: Mistral's layout (Metaspace, prepend first, no split) equals the reference") { check_kind("mistral"); }

TEST_CASE("family tokenizers: Metaspace always with split, and the Metaspace decoder, equal the reference") {
    check_kind("metaspace");
}

TEST_CASE("family tokenizers: Llama 3's Split pattern, ByteLevel and ignore_merges equal the reference") { check_kind("llama3"); }

TEST_CASE("family tokenizers: byte fallback spells unknown characters as <0xNN> and decodes them back to UTF-8") {
    const auto tok = io::tokenizer::from_folder(data_dir / "llama2");
    // Not in the training text: every byte of the emoji through its byte token.
    const std::string emoji = "\xF0\x9F\xA6\x84";  // U+1F984
    const auto ids = tok.encode(emoji);
    std::vector<std::string> spelled;
    for (const auto id : ids) spelled.push_back(tok.token(id));
    CHECK(std::find(spelled.begin(), spelled.end(), "<0xF0>") != spelled.end());
    CHECK(std::find(spelled.begin(), spelled.end(), "<0x84>") != spelled.end());
    CHECK(tok.decode(ids) == emoji);
    // A cut through the character: decode keeps the bytes, decode_text shows U+FFFD per byte.
    const std::vector<std::int32_t> cut(ids.begin(), ids.end() - 1);
    CHECK(tok.decode(cut).ends_with("\xF0\x9F\xA6"));
    CHECK(tok.decode_text(cut).ends_with("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
}

TEST_CASE("family tokenizers: bytes that are not UTF-8 go through byte fallback and decode back unchanged") {
    // (Not "metaspace": its decoder has no ByteFallback step, so byte tokens stay
    // spelled <0xNN> when decoded, as in the reference.)
    for (const std::string kind : {"llama2", "mistral", "llama3"}) {
        const auto tok = io::tokenizer::from_folder(data_dir / kind);
        for (const auto& text : {std::string("abc\x80" "def"), std::string("\xff"), std::string("x \xe2\x82 y"),
                                       std::string("\xed\xa0\x80"), std::string("\xc0\xaf!"), std::string("caf\xc3")}) {
            INFO(kind << ": text " << shown(text));
            const auto ids = tok.encode(text);
            CHECK(!ids.empty());
            std::string back = tok.decode(ids);
            if (kind != "llama3" && back.starts_with(' ') && !text.starts_with(' ')) back.erase(0, 1);
            CHECK(back == text);
        }
    }
}

TEST_CASE("family tokenizers: components that are not supported are refused by name") {
    auto base = read_json(data_dir / "llama2" / "tokenizer.json");
    const auto p = scratch("tokenizer.json");
    auto refuses = [&](const json& j, const std::string& why) {
        std::ofstream(p) << j.dump();
        CHECK_THROWS_WITH(io::tokenizer::from_json(p), Catch::Contains(p.string()) && Catch::Contains(why));
    };
    auto with = [&](const char* key, const json& v) {
        auto j = base;
        j[key] = v;
        return j;
    };
    refuses(with("normalizer", {{"type", "NFKC"}}), "the normalizer NFKC is not supported");
    refuses(with("normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Lowercase"}}}}}), "the normalizer Lowercase is not supported");
    refuses(with("normalizer", {{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", "_"}}), "replaces a Regex pattern");
    refuses(with("pre_tokenizer", {{"type", "Whitespace"}}), "the pre-tokenizer is Whitespace, which is not supported");
    refuses(with("pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "_"}, {"prepend_scheme", "sometimes"}}),
            "prepend_scheme is \"sometimes\"");
    refuses(with("pre_tokenizer", {{"type", "Sequence"},
                                   {"pretokenizers",
                                    {{{"type", "Split"}, {"pattern", {{"Regex", "\\d+"}}}, {"behavior", "Isolated"}, {"invert", false}},
                                     {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}),
            "Split's pattern \"\\d+\" is not supported");
    refuses(with("decoder", {{"type", "WordPiece"}}), "the decoder WordPiece is not supported");
    refuses(with("decoder", {{"type", "Strip"}, {"content", " "}, {"start", -1}, {"stop", 0}}), "`start` is not a count");
    refuses(with("decoder", nullptr), "the decoder is missing");
}

TEST_CASE("family tokenizers: BOS and EOS as tokenizer_config.json names them; add_bos_token and add_eos_token") {
    const auto llama2 = io::tokenizer::from_folder(data_dir / "llama2");
    CHECK(llama2.bos_id() == 1);
    CHECK(llama2.eos_id() == 2);
    CHECK(llama2.special_prefix() == std::vector<std::int32_t>{1});
    CHECK(llama2.special_suffix().empty());
    const auto llama3 = io::tokenizer::from_folder(data_dir / "llama3");
    CHECK(llama3.bos_id() == llama3.id_of("<|begin_of_text|>"));
    CHECK(llama3.eos_id() == llama3.id_of("<|eot_id|>"));
    // A folder whose config asks for no BOS and an EOS: the template follows it.
    const auto dir = scratch("config");
    fs::create_directories(dir);
    fs::copy_file(data_dir / "llama2" / "tokenizer.json", dir / "tokenizer.json", fs::copy_options::overwrite_existing);
    std::ofstream(dir / "tokenizer_config.json") << json({{"add_bos_token", false}, {"add_eos_token", true}, {"bos_token", "<s>"},
                                                         {"eos_token", {{"content", "</s>"}, {"special", true}}}}).dump();
    const auto t = io::tokenizer::from_folder(dir);
    const auto plain = t.encode("hello");
    auto want = plain;
    want.push_back(2);
    CHECK(t.encode_with_specials("hello") == want);
    std::ofstream(dir / "tokenizer_config.json") << json({{"add_bos_token", "yes"}}).dump();
    CHECK_THROWS_WITH(io::tokenizer::from_folder(dir), Catch::Contains("tokenizer_config.json") && Catch::Contains("`add_bos_token` is not true or false"));
    std::ofstream(dir / "tokenizer_config.json") << json({{"add_bos_token", true}, {"bos_token", "<nope>"}}).dump();
    CHECK_THROWS_WITH(io::tokenizer::from_folder(dir), Catch::Contains("the bos_token \"<nope>\" is not in the tokenizer's vocabulary"));
}

TEST_CASE("family tokenizers: ids a padded vocabulary holds beyond the tokenizer decode to nothing") {
    const auto tok = io::tokenizer::from_folder(data_dir / "llama3");
    const auto ids = tok.encode("Hello world");
    auto padded = ids;
    padded.insert(padded.begin() + 1, tok.vocab_size());
    padded.push_back(tok.vocab_size() + 1000);
    CHECK(tok.decode(padded) == tok.decode(ids));
    CHECK_THROWS_WITH(tok.decode(std::vector<std::int32_t>{-1}), Catch::Contains("token id -1 is out of range"));
}

TEST_CASE("family tokenizers: the text new tokens add to a prompt keeps the space SentencePiece drops before a text's first word") {
    // Each reference case's ids cut in two: what the second part adds to the
    // first is the rest of the reference's decoding of the whole.
    const auto tok = io::tokenizer::from_folder(data_dir / "llama2");
    int needed = 0;  // cuts where decoding the second part alone would lose its leading space
    for (const auto& c : read_json(data_dir / "llama2" / "cases.json")) {
        const std::vector<std::int32_t> ids = c["ids"];
        const std::string whole = c["decoded"];
        for (std::size_t k = 1; k < ids.size(); ++k) {
            const std::span<const std::int32_t> prompt(ids.data(), k), made(ids.data() + k, ids.size() - k);
            const auto before = tok.decode_text(prompt);
            if (!whole.starts_with(before) || before.find("\xEF\xBF\xBD") != std::string::npos) continue;  // a cut character
            INFO("text " << shown(c["text"].get<std::string>()) << " cut after " << k << " tokens");
            CHECK(tok.continuation(prompt, made, true) == whole.substr(before.size()));
            needed += tok.decode_text(made) != whole.substr(before.size());
        }
    }
    CHECK(needed > 100);
}

TEST_CASE("family tokenizers: generation stops at the model's end tokens and the tokenizer's eos_token, each once") {
    const auto tok = io::tokenizer::from_folder(data_dir / "llama2");
    const auto eos = tok.eos_id();
    REQUIRE(eos);
    CHECK(tok.end_tokens({}) == std::vector<std::int32_t>{*eos});
    CHECK(tok.end_tokens({7, *eos}) == std::vector<std::int32_t>{7, *eos});
    CHECK(tok.end_tokens({7, 9}) == std::vector<std::int32_t>{7, 9, *eos});
}

}  // namespace test_family_tokenizers
