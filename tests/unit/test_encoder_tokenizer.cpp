// The encoders' tokenizers against Hugging Face: tokenizer_golden.json in each
// tests/data/*-tiny-cls and bert-tiny-embed folder holds a corpus (accents, CJK,
// Hangul, many scripts, punctuation and symbols, emoji, control and zero-width
// characters, whitespace runs, words of 99 to 135 characters, special tokens in
// the text) as transformers' tokenizer encodes it (scripts/reference/
// make_encoder_golden.py): without special tokens, alone in the template and as a
// pair, truncated to 48 tokens. WordPiece (BERT uncased and cased, DistilBERT) and
// byte-level BPE (RoBERTa), from tokenizer.json and from the classic files.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "golden.hpp"
#include "scribe/io/encoder_tokenizer.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_encoder_tokenizer {

using namespace scribe;
using Catch::Matchers::Contains;
using scribe_test::data;

namespace {

namespace fs = std::filesystem;

// A copy of the model folder's tokenizer without tokenizer.json: the classic files.
fs::path classic_copy(const std::string& model) {
    const auto dir = fs::temp_directory_path() / ("scribe-classic-" + model + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* f : {"vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json"})
        if (fs::exists(data / model / f)) fs::copy_file(data / model / f, dir / f);
    return dir;
}

void check_tokenizer(const std::string& model, const std::string& family, bool types) {
    std::ifstream in(data / model / "tokenizer_golden.json");
    const auto g = nlohmann::json::parse(in);
    const auto classic_dir = classic_copy(model);
    const auto json_tok = io::encoder_tokenizer::from_folder(data / model, family);
    const auto classic = io::encoder_tokenizer::from_folder(classic_dir, family);
    REQUIRE(json_tok.model_max_length() == std::optional<std::size_t>(48));
    std::size_t n = 0;
    for (const auto* t : {&json_tok, &classic}) {
        for (const auto& c : g["cases"]) {
            const auto text = c["text"].get<std::string>(), pair = c["pair"].get<std::string>();
            INFO(model << (t == &classic ? " (classic files)" : " (tokenizer.json)") << ": \"" << text << "\" / \"" << pair << "\"");
            const auto plain = t->encode_plain(text);
            CHECK(plain == c["plain"].get<std::vector<std::int32_t>>());
            CHECK(t->decode(plain) == c["decoded"].get<std::string>());
            const auto single = t->encode(text, std::nullopt, 48);
            CHECK(single.ids == c["single"].get<std::vector<std::int32_t>>());
            const auto both = t->encode(text, pair, 48);
            CHECK(both.ids == c["both"].get<std::vector<std::int32_t>>());
            if (types) {
                CHECK(single.token_types == c["single_types"].get<std::vector<std::int32_t>>());
                CHECK(both.token_types == c["both_types"].get<std::vector<std::int32_t>>());
            }
            ++n;
        }
    }
    CHECK(n == 2 * g["cases"].size());
    fs::remove_all(classic_dir);
}

}  // namespace

TEST_CASE("encoder tokenizers: WordPiece and byte-level BPE equal Hugging Face on the corpus") {
    check_tokenizer("bert-tiny-cls", "bert", true);        // uncased: lowercase, accents stripped
    check_tokenizer("bert-tiny-embed", "bert", true);      // cased: accents kept
    check_tokenizer("distilbert-tiny-cls", "distilbert", false);
    check_tokenizer("roberta-tiny-cls", "roberta", false);  // <s> A </s></s> B </s>
}

TEST_CASE("encoder tokenizers: truncation keeps the template and shares the room longest first") {
    const auto t = io::encoder_tokenizer::from_folder(data / "bert-tiny-cls", "bert");
    const std::string a = "the mill the mill the mill the mill the mill", b = "the sea";
    const auto whole = t.encode(a, b, 0);
    CHECK(whole.dropped == 0);
    const auto cut = t.encode(a, b, 12);
    CHECK(cut.ids.size() == 12);
    CHECK(cut.dropped == whole.ids.size() - 12);
    CHECK(cut.ids.front() == whole.ids.front());  // [CLS]
    CHECK(cut.ids.back() == whole.ids.back());    // [SEP]
    CHECK(t.encode(a, std::nullopt, 1000).ids.size() <= 48);  // model_max_length caps it
}

TEST_CASE("encoder tokenizers: a bad tokenizer folder is refused, naming the file and the thing") {
    const auto dir = fs::temp_directory_path() / ("scribe-badtok-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    CHECK_THROWS_WITH(io::encoder_tokenizer::from_folder(dir, "bert"), Contains("no tokenizer"));
    auto write = [&](const std::string& name, const std::string& text) { std::ofstream(dir / name) << text; };
    write("vocab.txt", "a\nb\n");
    CHECK_THROWS_WITH(io::encoder_tokenizer::from_folder(dir, "bert"), Contains("the unknown token \"[UNK]\" is not in the vocabulary"));
    write("vocab.txt", "[UNK]\na\n");
    CHECK_THROWS_WITH(io::encoder_tokenizer::from_folder(dir, "bert"), Contains("the special token \"[CLS]\" is not in the vocabulary"));
    fs::remove(dir / "vocab.txt");
    auto j = nlohmann::json::parse(std::ifstream(data / "bert-tiny-cls" / "tokenizer.json"));
    j["normalizer"] = {{"type", "NFKC"}};
    write("tokenizer.json", j.dump());
    CHECK_THROWS_WITH(io::encoder_tokenizer::from_folder(dir, "bert"), Contains("the normalizer NFKC is not supported"));
    j = nlohmann::json::parse(std::ifstream(data / "bert-tiny-cls" / "tokenizer.json"));
    j["pre_tokenizer"] = {{"type", "Whitespace"}};
    write("tokenizer.json", j.dump());
    CHECK_THROWS_WITH(io::encoder_tokenizer::from_folder(dir, "bert"), Contains("the pre-tokenizer is Whitespace"));
    j = nlohmann::json::parse(std::ifstream(data / "bert-tiny-cls" / "tokenizer.json"));
    j["post_processor"] = {{"type", "ByteLevel"}};
    write("tokenizer.json", j.dump());
    CHECK_THROWS_WITH(io::encoder_tokenizer::from_folder(dir, "bert"), Contains("the post-processor ByteLevel is not supported"));
    j = nlohmann::json::parse(std::ifstream(data / "bert-tiny-cls" / "tokenizer.json"));
    j["model"]["vocab"]["the"] = 100000;
    write("tokenizer.json", j.dump());
    CHECK_THROWS_WITH(io::encoder_tokenizer::from_folder(dir, "bert"), Contains("has id 100000"));
    j = nlohmann::json::parse(std::ifstream(data / "bert-tiny-cls" / "tokenizer.json"));
    j["model"]["type"] = "Unigram";
    write("tokenizer.json", j.dump());
    CHECK_THROWS_WITH(io::encoder_tokenizer::from_folder(dir, "bert"), Contains("the model is \"Unigram\""));
    fs::remove_all(dir);
}

}  // namespace test_encoder_tokenizer
