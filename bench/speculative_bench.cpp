// Speculative decoding (runtime/speculative.hpp) on a draft/target pair that shares
// a tokenizer: decode tokens/s of the target alone and with the draft proposing K
// tokens a step, for K = 2, 4, 6, on 1 and 2 threads, greedy and sampled; with the
// acceptance rate and the tokens each verify step keeps. The pair by default: the
// demo model (models/demo-gpt2, 4.25M parameters) drafting for an 88M-parameter
// GPT-2 grown from it with 8 untrained blocks added (bench/make_speculative_pair.py,
// made in the build folder on first run).
//
//   speculative_bench [--target DIR] [--draft DIR] [--python PY] [--threads 1,2] [--ks 2,4,6]
//                     [--tokens 128] [--rounds 3] [--json FILE]
//
// Each round runs the target alone, then every K, on the same prompts (greedy: the
// tokens must be the target's own, or the benchmark fails); the speed-up is the
// median over rounds of the round's ratio (this machine's speed drifts by tens of
// percent over minutes, so configurations are compared within a round). Times are
// those of the decode loops (the prefills and building graphs are not counted).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "timing.hpp"

#include <scribe/io/tokenizer.hpp>
#include <scribe/models/gpt2.hpp>
#include <scribe/runtime/speculative.hpp>

using namespace scribe;
namespace fs = std::filesystem;

namespace {

struct options {
    fs::path target, draft;
    std::string python, json;
    std::vector<std::int64_t> threads = {1, 2}, ks = {2, 4, 6};
    std::int64_t tokens = 128;
    int rounds = 3;
};

std::vector<std::int64_t> numbers(const std::string& s, const char* flag) {
    std::vector<std::int64_t> v;
    std::stringstream in(s);
    for (std::string x; std::getline(in, x, ',');) v.push_back(bench::parse_count(x, flag, "speculative_bench", 1, 1 << 20));
    if (v.empty()) throw error(std::string("speculative_bench: ") + flag + " takes whole numbers separated by commas, not \"" + s + "\"");
    return v;
}

const std::vector<std::string> prompts = {"In the beginning", "And the LORD said unto Moses,", "Blessed are the",
                                          "Now when Jesus was born in Bethlehem"};

struct cell {
    std::vector<double> plain, spec, ratio;  // decode tokens/s per round, and their ratio
    std::int64_t drafted = 0, accepted = 0, rounds = 0, made = 0;
};

}  // namespace

int main(int argc, char** argv) try {
    options o;
    const fs::path source = SCRIBE_SOURCE_DIR;
    o.draft = source / "models" / "demo-gpt2";
    o.target = source / "build" / "bench" / "speculative-target";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help") {
            std::printf("usage: speculative_bench [--target DIR] [--draft DIR] [--python PY] [--threads 1,2] [--ks 2,4,6] "
                        "[--tokens 128] [--rounds 3] [--json FILE]\n");
            return 0;
        }
        if (i + 1 >= argc) throw error("speculative_bench: " + a + " needs a value");
        const std::string v = argv[++i];
        if (a == "--target") o.target = v;
        else if (a == "--draft") o.draft = v;
        else if (a == "--python") o.python = v;
        else if (a == "--json") o.json = v;
        else if (a == "--threads") o.threads = numbers(v, "--threads");
        else if (a == "--ks") o.ks = numbers(v, "--ks");
        else if (a == "--tokens") o.tokens = numbers(v, "--tokens").at(0);
        else if (a == "--rounds") o.rounds = static_cast<int>(numbers(v, "--rounds").at(0));
        else throw error("speculative_bench: unknown option " + a + " (--help lists them)");
    }
    if (!o.python.empty() && fs::exists(o.python)) {
        bench::run_command("speculative_bench", o.python + " " + (source / "bench" / "make_speculative_pair.py").string() + " " + o.target.string());
    }
    if (!fs::exists(o.target / "model.safetensors")) {
        std::fprintf(stderr, "speculative_bench: no target in %s; make it with `.venv-ref/bin/python bench/make_speculative_pair.py %s`\n",
                     o.target.c_str(), o.target.c_str());
        return 77;  // skipped
    }
    const auto tok = io::tokenizer::from_folder(o.target);
    std::printf("speculative decoding: target %s, draft %s; %lld new tokens a prompt, %zu prompts, %d rounds\n", o.target.c_str(),
                o.draft.c_str(), static_cast<long long>(o.tokens), prompts.size(), o.rounds);
    std::printf("%-7s %-7s %3s %12s %12s %9s %11s %12s\n", "threads", "mode", "K", "alone tok/s", "spec tok/s", "speed-up", "acceptance",
                "tokens/step");
    nlohmann::json report = nlohmann::json::array();
    for (const auto threads : o.threads) {
        const runtime::load_options lo{.threads = static_cast<unsigned>(threads)};
        runtime::decoder<models::gpt2_family> target(o.target, lo), draft(o.draft, lo);
        for (const bool greedy : {true, false}) {
            std::map<std::int64_t, cell> cells;
            for (int r = 0; r < o.rounds; ++r) {
                double alone_s = 0, alone_n = 0;
                std::map<std::int64_t, std::pair<double, double>> spec;  // K -> seconds, tokens
                for (std::size_t p = 0; p < prompts.size(); ++p) {
                    runtime::generate_options g{.max_new_tokens = o.tokens, .stop_at_eos = false, .vocab_limit = tok.vocab_size()};
                    if (!greedy) g.sample = {.temperature = 0.8, .top_k = 40, .seed = static_cast<std::uint64_t>(100 * r + p)};
                    const auto ids = tok.encode_with_specials(prompts[p]);
                    const auto plain = target.generate({ids}, g);
                    alone_s += plain.decode_seconds;
                    alone_n += static_cast<double>(plain.tokens[0].size() - 1);
                    for (const auto k : o.ks) {
                        const auto s = runtime::speculative_generate(target, draft, ids, g, {.draft_tokens = k});
                        if (greedy && s.tokens[0] != plain.tokens[0])
                            throw error("speculative_bench: greedy speculation (K " + std::to_string(k) + ") differs from the target's own tokens");
                        spec[k].first += s.decode_seconds;
                        spec[k].second += static_cast<double>(s.tokens[0].size() - 1);
                        auto& c = cells[k];
                        c.drafted += s.drafted, c.accepted += s.accepted, c.rounds += s.rounds;
                        c.made += static_cast<std::int64_t>(s.tokens[0].size() - 1);
                    }
                }
                for (const auto k : o.ks) {
                    auto& c = cells[k];
                    c.plain.push_back(alone_n / alone_s);
                    c.spec.push_back(spec[k].second / spec[k].first);
                    c.ratio.push_back(c.spec.back() / c.plain.back());
                }
            }
            for (const auto k : o.ks) {
                const auto& c = cells[k];
                const double acceptance = c.drafted ? static_cast<double>(c.accepted) / static_cast<double>(c.drafted) : 0;
                const double per_step = c.rounds ? static_cast<double>(c.made) / static_cast<double>(c.rounds) : 0;
                std::printf("%-7lld %-7s %3lld %12.1f %12.1f %8.2fx %10.1f%% %12.2f\n", static_cast<long long>(threads),
                            greedy ? "greedy" : "sampled", static_cast<long long>(k), bench::median(c.plain), bench::median(c.spec),
                            bench::median(c.ratio), 100 * acceptance, per_step);
                report.push_back({{"threads", threads}, {"mode", greedy ? "greedy" : "sampled"}, {"k", k},
                                  {"alone_tokens_per_s", bench::median(c.plain)}, {"speculative_tokens_per_s", bench::median(c.spec)},
                                  {"speedup", bench::median(c.ratio)}, {"acceptance", acceptance}, {"tokens_per_step", per_step}});
            }
        }
    }
    if (!o.json.empty()) std::ofstream(o.json) << nlohmann::json{{"pairs", report}}.dump(2) << "\n";
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
