// tools/tokenize.cpp — `scribe tokenize`: a model folder's BPE tokenizer (GPT-2's
// byte-level, Llama 2 / Mistral SentencePiece-style, Llama 3's) from the command
// line: the ids of a text, the text of ids, and each token's spelling.
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/io/tokenizer.hpp>

#include "cli.hpp"

namespace scribe::cli {

namespace {

const char* usage_tokenize = R"(usage: scribe tokenize [MODEL] (--text TEXT | --file FILE | --decode IDS) [options]

Runs the model folder's tokenizer (tokenizer.json, or vocab.json + merges.txt):
the ids of a text as the model reads it (added tokens found whole, no BOS), or the
text of ids.

options:
  --text TEXT      the text to encode (repeat for several)
  --file FILE      the text of a file (- reads standard input)
  --decode IDS     ids to decode, separated by commas or spaces: "15496, 11, 995"
  --tokens         with --text or --file: each id with its token's spelling
  --json           print JSON: {"ids": [...]} or {"text": "..."}
)";

std::vector<std::int32_t> parse_ids(const std::string& s, std::int32_t vocab) {
    std::vector<std::int32_t> ids;
    std::string item;
    std::stringstream in(s);
    auto take = [&] {
        if (item.empty()) return;
        std::size_t used = 0;
        long long v = -1;
        try {
            v = std::stoll(item, &used);
        } catch (...) {
            used = 0;
        }
        if (used != item.size()) throw error("--decode: \"" + io::printable(item) + "\" is not an id (ids are integers, e.g. 15496,11,995)");
        if (v < 0 || v >= vocab)
            throw error("--decode: id " + item + " is outside the tokenizer's " + std::to_string(vocab) + " tokens (0.." +
                        std::to_string(vocab - 1) + ")");
        ids.push_back(static_cast<std::int32_t>(v));
        item.clear();
    };
    for (const char c : s) {
        if (c == ',' || c == ' ' || c == '\t' || c == '\n') take();
        else item += c;
    }
    take();
    return ids;
}

}  // namespace

int tokenize_command(int argc, char** argv) {
    const auto a = parse(argc, argv, {"text", "file", "decode"}, {"tokens", "json", "help"});
    if (a.flag("help")) return std::printf("%s", usage_tokenize), 0;
    const int given = (a.prompts.empty() ? 0 : 1) + (a.value("file") ? 1 : 0) + (a.value("decode") ? 1 : 0);
    if (given != 1) throw error("scribe tokenize needs one of --text, --file or --decode (see scribe tokenize --help)");
    const auto tok = io::tokenizer::from_folder(a.model);
    if (const auto d = a.value("decode")) {
        const auto text = tok.decode(parse_ids(*d, tok.vocab_size()));
        if (a.flag("json")) std::printf("%s\n", nlohmann::json({{"text", text}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        else std::printf("%s\n", text.c_str());
        return 0;
    }
    std::vector<std::string> texts = a.prompts;
    if (const auto f = a.value("file")) texts.push_back(read_file_arg(*f, "--file", "the text"));
    for (const auto& text : texts) {
        const auto ids = tok.encode(text);
        if (a.flag("json")) {
            nlohmann::json j = {{"ids", ids}};
            if (a.flag("tokens")) {
                auto& spelled = j["tokens"] = nlohmann::json::array();
                for (const auto id : ids) spelled.push_back(tok.token(id));
            }
            std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
            continue;
        }
        if (a.flag("tokens")) {
            for (const auto id : ids) std::printf("%d\t%s\n", id, io::detail::printable_token(tok.token(id)).c_str());
            continue;
        }
        std::string line;
        for (const auto id : ids) line += (line.empty() ? "" : " ") + std::to_string(id);
        std::printf("%s\n", line.c_str());
    }
    return 0;
}

}  // namespace scribe::cli
