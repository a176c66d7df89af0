// io: the byte-level BPE tokenizer. Every case in tests/data/tokenizer (made by
// scripts/reference/make_tokenizer_data.py with Hugging Face `tokenizers`) is
// encoded to the reference's ids by both loaders and decodes back to its text;
// GPT-2's pattern splits each text as the reference's pre-tokenizer does; every
// malformed file is refused with an error naming it.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <scribe/io/tokenizer.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_tokenizer {

using namespace scribe;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path data_dir = fs::path(SCRIBE_TEST_DATA) / "tokenizer";

json read_json(const fs::path& p) {
    std::ifstream in(p);
    REQUIRE(in);
    return json::parse(in);
}

struct reference_case {
    std::string text;
    std::vector<std::int32_t> ids;
    std::string decoded;
    std::vector<std::string> pieces;
};

std::vector<reference_case> cases(const std::string& file) {
    std::vector<reference_case> out;
    for (const auto& c : read_json(data_dir / file)) {
        reference_case r{c["text"], c["ids"], c["decoded"], {}};
        if (c.contains("pieces")) r.pieces = c["pieces"].get<std::vector<std::string>>();
        out.push_back(std::move(r));
    }
    REQUIRE(!out.empty());
    return out;
}

fs::path scratch(const std::string& name) {
    const auto d = fs::temp_directory_path() / ("scribe_test_tokenizer_" + std::to_string(::getpid())) / name;
    fs::create_directories(d.parent_path());
    return d;
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// C++ string literals with escapes, for messages.
std::string shown(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

void check_encodes_like_reference(const io::tokenizer& tok, const std::vector<reference_case>& cs) {
    for (const auto& c : cs) {
        INFO("text " << shown(c.text));
        CHECK(tok.encode(c.text) == c.ids);
    }
}

// A minimal valid tokenizer.json, with `model` and `extra` fields overridden.
std::string small_json(const json& model_overrides = json::object(), const json& top_overrides = json::object()) {
    json j = {{"version", "1.0"},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"Ġ", 3}}},
                {"merges", json::array({"a b"})}}}};
    for (auto it = model_overrides.begin(); it != model_overrides.end(); ++it) j["model"][it.key()] = it.value();
    for (auto it = top_overrides.begin(); it != top_overrides.end(); ++it) j[it.key()] = it.value();
    return j.dump();
}

}  // namespace

TEST_CASE("tokenizer: tokenizer.json encodes every reference case to the reference's ids") {
    const auto tok = io::tokenizer::from_json(data_dir / "tokenizer.json");
    CHECK(tok.vocab_size() == 500);
    check_encodes_like_reference(tok, cases("cases.json"));
}

TEST_CASE("tokenizer: vocab.json + merges.txt encode every reference case to the reference's ids") {
    const auto tok = io::tokenizer::from_vocab_merges(data_dir / "vocab.json", data_dir / "merges.txt");
    CHECK(tok.vocab_size() == 500);
    CHECK(tok.eos_id() == 0);
    check_encodes_like_reference(tok, cases("cases.json"));
}

TEST_CASE("tokenizer: merges written as \"a b\" strings load the same as [a, b] arrays") {
    auto j = read_json(data_dir / "tokenizer.json");
    REQUIRE(j["model"]["merges"][0].is_array());  // what `tokenizers` writes now
    for (auto& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
    const auto tok = io::tokenizer::parse_json(j.dump(), "strings.json");
    check_encodes_like_reference(tok, cases("cases.json"));
}

TEST_CASE("tokenizer: add_prefix_space puts a space before each stretch of text, as the reference does") {
    auto j = read_json(data_dir / "tokenizer.json");
    j["pre_tokenizer"]["add_prefix_space"] = true;
    const auto tok = io::tokenizer::parse_json(j.dump(), "prefixed.json");
    check_encodes_like_reference(tok, cases("cases_prefix_space.json"));
}

TEST_CASE("tokenizer: added tokens with lstrip, rstrip, single_word and normalized match the reference") {
    const auto tok = io::tokenizer::from_json(data_dir / "tokenizer_added.json");
    CHECK(tok.vocab_size() == 508);
    CHECK(tok.id_of("<mask>") == 500);
    CHECK(tok.added_tokens().size() == 9);
    check_encodes_like_reference(tok, cases("cases_added.json"));
    for (const auto& c : cases("cases_added.json")) CHECK(tok.decode(c.ids) == c.decoded);
}

TEST_CASE("tokenizer: GPT-2's pattern splits every text as the reference's pre-tokenizer does") {
    for (const auto& c : cases("cases.json")) {
        INFO("text " << shown(c.text));
        std::vector<std::string> pieces;
        for (const auto p : io::tokenizer::pre_tokenize(c.text)) pieces.emplace_back(p);
        CHECK(pieces == c.pieces);
    }
    using v = std::vector<std::string_view>;
    CHECK(io::tokenizer::pre_tokenize("I'm  here!\n\nOK ") == v{"I", "'m", " ", " here", "!", "\n", "\n", "OK", " "});
    CHECK(io::tokenizer::pre_tokenize("a \t\n  b\t\t") == v{"a", " \t\n ", " b", "\t\t"});
    CHECK(io::tokenizer::pre_tokenize("x \n y") == v{"x", " \n", " y"});
}

TEST_CASE("tokenizer: decode gives back every reference text, byte for byte") {
    const auto a = io::tokenizer::from_json(data_dir / "tokenizer.json");
    const auto b = io::tokenizer::from_folder(data_dir);
    for (const auto& c : cases("cases.json")) {
        INFO("text " << shown(c.text));
        CHECK(a.decode(c.ids) == c.text);
        CHECK(a.decode(c.ids) == c.decoded);
        CHECK(b.decode(b.encode(c.text)) == c.text);
    }
}

TEST_CASE("tokenizer: lookups by id and by token; ids out of range are refused with the id and the size") {
    const auto tok = io::tokenizer::from_json(data_dir / "tokenizer.json");
    REQUIRE(tok.eos_id() == 0);
    CHECK(tok.token(0) == "<|endoftext|>");
    CHECK(tok.id_of("<|endoftext|>") == 0);
    CHECK(tok.id_of("Ġ") == tok.encode(" ").front());
    CHECK(tok.token(*tok.id_of("Ġthe")) == "Ġthe");
    CHECK(tok.decode(std::vector<std::int32_t>{*tok.id_of("Ġthe")}) == " the");
    CHECK(!tok.id_of("no such token"));
    for (std::int32_t id = 0; id < tok.vocab_size(); ++id) CHECK(tok.id_of(tok.token(id)) == id);
    CHECK_THROWS_WITH(tok.token(500), Catch::Contains("token id 500 is out of range: the vocabulary has 500 tokens") &&
                                          Catch::Contains("tokenizer.json"));
    CHECK_THROWS_WITH(tok.decode(std::vector<std::int32_t>{1, -3}), Catch::Contains("token id -3 is out of range"));
    CHECK(tok.encode(std::string(7, ' ')) == std::vector<std::int32_t>{274, 274, 310});  // the reference's: ĠĠ ĠĠ ĠĠĠ
    CHECK(tok.decode({}).empty());
    CHECK(tok.encode("").empty());
}

TEST_CASE("tokenizer: invalid UTF-8 is encoded byte by byte and decodes back unchanged") {
    const auto tok = io::tokenizer::from_json(data_dir / "tokenizer.json");
    for (const auto& s : std::vector<std::string>{"\xff", "\xc3", "a\xc3(b", "\xe2\x82 x", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong",
                                "\xf4\x90\x80\x80 too big", "\xf0\x9f\x98", "caf\xc3\xa9\xa9!", std::string("nul\0byte", 8)}) {
        INFO("text " << shown(s));
        CHECK(tok.decode(tok.encode(s)) == s);
    }
    // Invalid bytes are characters of none of the classes: they join punctuation.
    using v = std::vector<std::string_view>;
    CHECK(io::tokenizer::pre_tokenize("ab\xff\xfe!cd \xff") == v{"ab", "\xff\xfe!", "cd", " \xff"});
    std::mt19937 rng(1234);
    for (int i = 0; i < 300; ++i) {
        std::string s(rng() % 64, '\0');
        for (auto& ch : s) {
            const auto r = rng() % 8;
            ch = static_cast<char>(r == 0 ? ' ' : r == 1 ? 'a' + rng() % 3 : r == 2 ? '\'' : rng() % 256);
        }
        INFO("text " << shown(s));
        CHECK(tok.decode(tok.encode(s)) == s);
    }
}

TEST_CASE("tokenizer: a megabyte of one character, of spaces, and of text is encoded in reasonable time") {
    const auto tok = io::tokenizer::from_json(data_dir / "tokenizer.json");
    CHECK(tok.encode(std::string(1 << 20, ' ')).size() == (1 << 19));  // "Ġ Ġ" applies; "ĠĠ ĠĠ" is no merge
    const auto t0 = std::chrono::steady_clock::now();
    std::string prose;
    for (const auto& c : cases("cases.json")) prose += c.text;
    while (prose.size() < (1 << 20)) prose += prose;
    for (const auto& s : {std::string(1 << 20, 'a'), std::string(1 << 20, ' '), std::string(1 << 20, '\n'), prose}) {
        const auto ids = tok.encode(s);
        CHECK(ids.size() <= s.size());
        CHECK(tok.decode(ids) == s);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60));
}

TEST_CASE("tokenizer: a folder with tokenizer.json, or vocab.json and merges.txt, or neither") {
    const auto dir = scratch("two_files");
    fs::create_directories(dir);
    fs::copy_file(data_dir / "vocab.json", dir / "vocab.json", fs::copy_options::overwrite_existing);
    CHECK_THROWS_WITH(io::tokenizer::from_folder(dir), Catch::Contains(dir.string()) && Catch::Contains("vocab.json without merges.txt"));
    fs::copy_file(data_dir / "merges.txt", dir / "merges.txt", fs::copy_options::overwrite_existing);
    const auto tok = io::tokenizer::from_folder(dir);
    CHECK(tok.source().find("merges.txt") != std::string::npos);
    check_encodes_like_reference(tok, cases("cases.json"));
    const auto empty = scratch("empty");
    fs::create_directories(empty);
    CHECK_THROWS_WITH(io::tokenizer::from_folder(empty), Catch::Contains(empty.string()) && Catch::Contains("no tokenizer"));
    CHECK_THROWS_WITH(io::tokenizer::from_folder(scratch("absent")), Catch::Contains("not a folder"));
}

TEST_CASE("tokenizer: malformed tokenizer.json files are refused with the file named") {
    const auto p = scratch("bad_tokenizer.json");
    auto refuses = [&](const std::string& text, const std::string& why) {
        write(p, text);
        CHECK_THROWS_WITH(io::tokenizer::from_json(p), Catch::Contains(p.string()) && Catch::Contains(why));
    };
    SECTION("the small file is valid") {
        write(p, small_json());
        const auto tok = io::tokenizer::from_json(p);
        CHECK(tok.encode("abba") == std::vector<std::int32_t>{2, 1, 0});
        CHECK(!tok.eos_id());
        CHECK_THROWS_WITH(tok.encode("c"), Catch::Contains("no token for the byte 0x63") && Catch::Contains(p.string()));
    }
    SECTION("missing") {
        fs::remove(p);
        CHECK_THROWS_WITH(io::tokenizer::from_json(p), Catch::Contains(p.string()) && Catch::Contains("cannot open"));
    }
    SECTION("not JSON") { refuses("{\"model\": {", "not valid JSON"); }
    SECTION("not an object") { refuses("[1, 2]", "not a JSON object"); }
    SECTION("no model") { refuses("{}", "no \"model\""); }
    SECTION("model not BPE") { refuses(small_json({{"type", "WordPiece"}}), "the model is \"WordPiece\", not BPE"); }
    SECTION("vocab not an object") { refuses(small_json({{"vocab", {1, 2}}}), "the model's vocab is not a JSON object"); }
    SECTION("id not an integer") {
        refuses(small_json({{"vocab", {{"a", 0}, {"b", "1"}}}, {"merges", json::array()}}), "the id of token \"b\" is not an integer");
        refuses(small_json({{"vocab", {{"a", 0}, {"b", 1.5}}}, {"merges", json::array()}}), "the id of token \"b\" is not an integer");
    }
    SECTION("negative or huge id") {
        refuses(small_json({{"vocab", {{"a", -1}}}, {"merges", json::array()}}), "the id of token \"a\" is -1");
        refuses(small_json({{"vocab", {{"a", 0}, {"b", 1}, {"ab", 3000000000u}}}}), "the id of token \"ab\" is 3000000000");
    }
    SECTION("duplicate id") {
        refuses(small_json({{"vocab", {{"a", 0}, {"b", 1}, {"ab", 1}}}}), "tokens \"ab\" and \"b\" both have id 1");
    }
    SECTION("a gap in the ids") {
        refuses(small_json({{"vocab", {{"a", 0}, {"b", 1}, {"ab", 7}}}}), "token \"ab\" has id 7, but there are 3 tokens");
    }
    SECTION("a merge naming a token not in the vocabulary") {
        refuses(small_json({{"merges", json::array({"a c"})}}), "merge 0: the merge's token \"c\" is not in the vocabulary");
        refuses(small_json({{"merges", json::array({"a b", json::array({"x", "b"})})}}), "merge 1: the merge's token \"x\" is not in the vocabulary");
    }
    SECTION("a merge whose result is not in the vocabulary") {
        refuses(small_json({{"merges", json::array({"b a"})}}), "merge 0: the merge's result \"ba\" is not in the vocabulary");
    }
    SECTION("malformed merges") {
        refuses(small_json({{"merges", json::array({"ab"})}}), "merge 0 is not two tokens separated by one space");
        refuses(small_json({{"merges", json::array({"a b c"})}}), "merge 0 is not two tokens separated by one space");
        refuses(small_json({{"merges", json::array({"a  b"})}}), "merge 0 is not two tokens separated by one space");
        refuses(small_json({{"merges", json::array({json::array({"a", "b", "c"})})}}), "merge 0 is neither \"a b\" nor [\"a\", \"b\"]: it is an array of 3");
        refuses(small_json({{"merges", json::array({json::array({"a", 1})})}}), "merge 0 is neither");
        refuses(small_json({{"merges", json::array({7})}}), "merge 0 is neither");
        refuses(small_json({{"merges", "a b"}}), "the model's merges are not an array");
    }
    SECTION("no vocab or merges") {
        json j = json::parse(small_json());
        j["model"].erase("merges");
        refuses(j.dump(), "the model has no merges");
        j["model"].erase("vocab");
        refuses(j.dump(), "the model has no vocab");
    }
    SECTION("configurations this class does not implement") {
        refuses(small_json({{"dropout", 0.1}}), "BPE dropout (0.1)");
        refuses(small_json({{"continuing_subword_prefix", "##"}}), "continuing_subword_prefix (the string \"##\")");
        refuses(small_json({{"byte_fallback", true}}), "byte_fallback");
        refuses(small_json({}, {{"normalizer", {{"type", "NFC"}}}}), "the normalizer NFC is not supported");
        refuses(small_json({}, {{"pre_tokenizer", {{"type", "Whitespace"}}}}), "the pre-tokenizer is Whitespace, which is not supported");
        refuses(small_json({}, {{"decoder", {{"type", "WordPiece"}}}}), "the decoder WordPiece is not supported");
        refuses(small_json({}, {{"decoder", nullptr}}), "the decoder is missing");
        // No pre-tokenizer: the text between added tokens is one piece, read as characters.
        write(p, small_json({}, {{"pre_tokenizer", nullptr}}));
        CHECK(io::tokenizer::from_json(p).encode("abba") == std::vector<std::int32_t>{2, 1, 0});
        refuses(small_json({}, {{"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", "yes"}}}}),
                "the pre-tokenizer's `add_prefix_space` is not true or false");
    }
    SECTION("added tokens") {
        refuses(small_json({}, {{"added_tokens", {{{"id", 4}}}}}), "added token 0 has no content string");
        refuses(small_json({}, {{"added_tokens", {{{"id", "4"}, {"content", "<s>"}}}}}), "added token 0 has no id");
        refuses(small_json({}, {{"added_tokens", {{{"id", 1}, {"content", "<s>"}}}}}), "tokens \"b\" and \"<s>\" both have id 1");
        refuses(small_json({}, {{"added_tokens", {{{"id", 1}, {"content", "ab"}}}}}), "added token \"ab\" has id 1, but the vocabulary gives it 2");
        refuses(small_json({}, {{"added_tokens", {{{"id", 9}, {"content", "<s>"}}}}}), "token \"<s>\" has id 9, but there are 5 tokens");
        refuses(small_json({}, {{"added_tokens", {{{"id", 4}, {"content", ""}}}}}), "added token 4 is empty");
        refuses(small_json({}, {{"added_tokens", {{{"id", 4}, {"content", "<s>"}, {"lstrip", 1}}}}}), "added token 0 `lstrip` is not true or false");
        write(p, small_json({}, {{"added_tokens", {{{"id", 4}, {"content", "<s>"}, {"special", true}}}}}));
        const auto tok = io::tokenizer::from_json(p);
        CHECK(tok.encode("a<s>b") == std::vector<std::int32_t>{0, 4, 1});
        CHECK(tok.decode(std::vector<std::int32_t>{4, 3}) == "<s> ");
    }
}

TEST_CASE("tokenizer: malformed vocab.json and merges.txt are refused with the file named") {
    const auto v = scratch("vocab.json"), m = scratch("merges.txt");
    const std::string vocab = R"({"a": 0, "b": 1, "ab": 2, "Ġ": 3})";
    auto refuses = [&](const std::string& vocab_text, const std::string& merges_text, const fs::path& named, const std::string& why) {
        write(v, vocab_text);
        write(m, merges_text);
        CHECK_THROWS_WITH(io::tokenizer::from_vocab_merges(v, m), Catch::Contains(named.string()) && Catch::Contains(why));
    };
    SECTION("valid, with and without a #version line and CRLF line ends") {
        for (const std::string merges : {"#version: 0.2\na b\n", "a b", "#version: 0.2\r\na b\r\n"}) {
            write(v, vocab);
            write(m, merges);
            const auto tok = io::tokenizer::from_vocab_merges(v, m);
            CHECK(tok.encode("ab ab") == std::vector<std::int32_t>{2, 3, 2});
        }
    }
    SECTION("missing files") {
        write(m, "a b\n");
        fs::remove(v);
        CHECK_THROWS_WITH(io::tokenizer::from_vocab_merges(v, m), Catch::Contains(v.string()) && Catch::Contains("cannot open"));
        write(v, vocab);
        fs::remove(m);
        CHECK_THROWS_WITH(io::tokenizer::from_vocab_merges(v, m), Catch::Contains(m.string()) && Catch::Contains("cannot open"));
    }
    SECTION("vocab.json not JSON") { refuses("{\"a\": ", "a b\n", v, "not valid JSON"); }
    SECTION("vocab.json not an object") { refuses("[\"a\", \"b\"]", "a b\n", v, "is not a JSON object of token -> id"); }
    SECTION("vocab.json id not an integer") { refuses(R"({"a": 0, "b": null})", "", v, "the id of token \"b\" is not an integer"); }
    SECTION("vocab.json duplicate id") { refuses(R"({"a": 0, "b": 0})", "", v, "tokens \"a\" and \"b\" both have id 0"); }
    SECTION("vocab.json gap") { refuses(R"({"a": 0, "b": 2})", "", v, "token \"b\" has id 2, but there are 2 tokens"); }
    SECTION("merges.txt line malformed") {
        refuses(vocab, "#version: 0.2\na b\nab\n", m, "line 3 is not a merge (two tokens separated by one space)");
        refuses(vocab, "a b\n\na b\n", m, "line 2 is not a merge");
        refuses(vocab, "a b c\n", m, "line 1 is not a merge");
        refuses(vocab, "a\tb\n", m, "line 1 is not a merge (two tokens separated by one space)");
    }
    SECTION("merges.txt naming a token not in the vocabulary") { refuses(vocab, "a b\na z\n", m, "line 2: the merge's token \"z\" is not in the vocabulary"); }
    SECTION("merges.txt result not in the vocabulary") { refuses(vocab, "b a\n", m, "line 1: the merge's result \"ba\" is not in the vocabulary"); }
}

TEST_CASE("tokenizer: the in-memory loaders name the source they are given") {
    CHECK_THROWS_WITH(io::tokenizer::parse_json("nope", "memory.json"), Catch::Contains("memory.json: not valid JSON"));
    CHECK_THROWS_WITH(io::tokenizer::parse_vocab_merges("{}", "x y", "v", "m"), Catch::Contains("m: line 1: the merge's token \"x\""));
    const auto tok = io::tokenizer::parse_vocab_merges(R"({"a": 0, "b": 1, "ab": 2})", "a b", "v", "m");
    CHECK(tok.encode("ab") == std::vector<std::int32_t>{2});
    CHECK_THROWS_WITH(tok.token(3), Catch::Contains("v + m: token id 3 is out of range: the vocabulary has 3 tokens"));
}

}  // namespace test_tokenizer
