// bench/tokenizer_bench.cpp — encoding speed of io::tokenizer against Hugging Face
// `tokenizers` (Rust, one thread, bench/tokenizers_peer.py) in the same run, in MB of
// text a second, for each kind of BPE tokenizer the decoder families use: GPT-2's
// byte-level BPE, Llama 2's SentencePiece-style BPE (normalizers, byte fallback),
// Mistral's Metaspace layout of it, and Llama 3's byte-level BPE with its Split
// pattern. The tokenizers are trained by bench/make_bench_tokenizers.py on the
// benchmark's text (to 16,000 tokens, or as many as its pairs allow); both sides
// encode the text line by line (the peer twice: encode() per line from Python, and
// encode_batch() over all lines, one Rust call, one thread; the ratio is against
// the faster), and the number of ids they make must be equal.
//
//   tokenizer_bench --python PY [--dir WORK] [--json FILE] [--budget S] [--megabytes N]
//
// The text: the held-out KJV chapters and every text of the tokenizer tests'
// corpus (tests/data/tokenizers: every script, emoji, digits, whitespace runs),
// repeated to about N MB (default 4).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/io/tokenizer.hpp>

#include "timing.hpp"

using namespace scribe;
namespace fs = std::filesystem;

namespace {

struct options {
    std::string python;
    fs::path work = "tokenizer-bench", json_path;
    double budget = 3.0;
    double megabytes = 4.0;
};

void run_command(const std::string& cmd) {
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) throw error("tokenizer_bench: `" + cmd + "` failed");
}

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw error("tokenizer_bench: cannot read " + p.string());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The benchmark text (see the top of the file), one text a line.
std::string make_text(double megabytes) {
    const fs::path data = fs::path(SCRIBE_SOURCE_DIR) / "tests" / "data";
    std::string unit = read_all(data / "heldout" / "kjv-revelation-21-22.txt");
    std::ifstream cases(data / "tokenizers" / "llama2" / "cases.json");
    for (const auto& c : nlohmann::json::parse(cases)) {
        std::string t = c["text"];
        for (auto& ch : t)
            if (ch == '\n' || ch == '\r') ch = ' ';  // one text a line
        unit += t + "\n";
    }
    std::string text;
    while (static_cast<double>(text.size()) < megabytes * 1e6) text += unit;
    return text;
}

std::vector<std::string_view> lines_of(const std::string& text) {
    std::vector<std::string_view> out;
    std::size_t at = 0;
    while (at <= text.size()) {
        auto end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        out.push_back(std::string_view(text).substr(at, end - at));
        at = end + 1;
    }
    return out;
}

int run(const options& o) {
    fs::create_directories(o.work);
    const auto text_path = o.work / "text.txt";
    const auto text = make_text(o.megabytes);
    std::ofstream(text_path, std::ios::binary) << text;
    const auto lines = lines_of(text);
    const std::vector<std::string> kinds = {"gpt2", "llama2", "mistral", "llama3"};
    const auto tokenizers = o.work / "tokenizers";
    const auto src = fs::path(SCRIBE_SOURCE_DIR) / "bench";
    run_command(o.python + " " + (src / "make_bench_tokenizers.py").string() + " " + text_path.string() + " " + tokenizers.string());
    std::string folders;
    for (const auto& k : kinds) folders += " " + (tokenizers / k).string();
    const auto peer_json = o.work / "peer.json";
    run_command(o.python + " " + (src / "tokenizers_peer.py").string() + " " + text_path.string() + folders + " --budget " +
                std::to_string(o.budget) + " --json " + peer_json.string() + " >/dev/null");
    const auto peer = nlohmann::json::parse(read_all(peer_json));
    std::printf("tokenizer_bench: %.1f MB of text, %zu lines; tokenizers %s (one thread)\n", static_cast<double>(text.size()) / 1e6,
                lines.size(), peer["tokenizers"].get<std::string>().c_str());
    std::printf("  %-8s %8s %14s %16s %8s %s\n", "kind", "vocab", "Scribe MB/s", "tokenizers MB/s", "ratio", "ids (equal?)");
    nlohmann::json report = {{"bytes", text.size()}, {"tokenizers_version", peer["tokenizers"]}, {"kinds", nlohmann::json::object()}};
    bool all_equal = true;
    for (const auto& k : kinds) {
        const auto tok = io::tokenizer::from_folder(tokenizers / k);
        std::size_t ids = 0;
        const double s = bench::median_seconds(
            [&] {
                ids = 0;
                for (const auto line : lines) ids += tok.encode(line).size();
            },
            o.budget);
        const double ours = static_cast<double>(text.size()) / s / 1e6;
        const auto& both = peer["results"][(tokenizers / k).string()];
        const auto& theirs = both["batch"]["mb_per_s"].get<double>() > both["lines"]["mb_per_s"].get<double>() ? both["batch"] : both["lines"];
        const double their_mbs = theirs["mb_per_s"];
        const bool equal = both["lines"]["ids"].get<std::size_t>() == ids && both["batch"]["ids"].get<std::size_t>() == ids;
        all_equal = all_equal && equal;
        std::printf("  %-8s %8d %14.2f %16.2f %7.2fx %zu (%s)\n", k.c_str(), tok.vocab_size(), ours, their_mbs, ours / their_mbs, ids,
                    equal ? "equal" : ("tokenizers: " + std::to_string(theirs["ids"].get<std::size_t>())).c_str());
        report["kinds"][k] = {{"vocab", tok.vocab_size()}, {"scribe_mb_per_s", ours}, {"tokenizers_mb_per_s", their_mbs},
                              {"tokenizers_lines_mb_per_s", both["lines"]["mb_per_s"]}, {"tokenizers_batch_mb_per_s", both["batch"]["mb_per_s"]},
                              {"ratio", ours / their_mbs}, {"ids", ids}, {"ids_equal", equal}};
    }
    if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(2) << "\n";
    if (!all_equal) std::fprintf(stderr, "tokenizer_bench: the id counts differ from the reference's\n");
    return all_equal ? 0 : 1;
}

const char* usage = R"(usage: tokenizer_bench --python PY [options]

MB/s of Scribe's BPE tokenizers against Hugging Face `tokenizers` (one thread),
on the same text and the same tokenizers (trained for the run).

options:
  --python PY     a Python with `tokenizers` (.venv-ref): trains the tokenizers, runs the peer
  --dir WORK      working folder (text, tokenizers, the peer's report)
  --json FILE     write the report as JSON
  --budget S      seconds of repeated runs per cell (default 3)
  --megabytes N   size of the text (default 4)
)";

}  // namespace

int main(int argc, char** argv) try {
    options o;
    for (int i = 1; i < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") return std::printf("%s", usage), 0;
        if (i + 1 >= argc) throw error("tokenizer_bench: " + a + " needs a value");
        const std::string v = argv[i + 1];
        if (a == "--python") o.python = v;
        else if (a == "--dir") o.work = v;
        else if (a == "--json") o.json_path = v;
        else if (a == "--budget") o.budget = bench::parse_positive(v, a, "tokenizer_bench");
        else if (a == "--megabytes") o.megabytes = bench::parse_positive(v, a, "tokenizer_bench");
        else throw error("tokenizer_bench: unknown option " + a);
    }
    if (o.python.empty() || !fs::exists(o.python)) {
        std::fprintf(stderr, "tokenizer_bench: no Python with `tokenizers` (--python; scribe_setup_reference in scripts/setup.sh "
                             "makes .venv-ref): skipped\n");
        return 77;
    }
    return run(o);
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
