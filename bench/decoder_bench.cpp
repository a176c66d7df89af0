// A decoder model end to end on the CPU (runtime::decoder): any family's Hugging
// Face folder (models::with_family: GPT-2, GPT-J, OPT, LLaMA/Mistral; the benchmarks
// run GPT-2 124M and a LLaMA of the same size), prefill of a 128-token prompt and
// KV-cached decode, in tokens/s, for f32, f16 and bf16 weights on 1 and 2 threads,
// against PyTorch (Hugging Face AutoModelForCausalLM, eager, CPU) running the same
// checkpoint in the same run, and against the machine's limits measured in the
// same run.
//
//   decoder_bench --model DIR [--make SCRIPT] [--python PY] [--dir WORK] [--json FILE]
//                 [--threads 1,2] [--dtypes f32,f16,bf16,q8,q4] [--steps 32] [--budget S] [--llama-cpp DIR]
//                 [--rounds R]   (Scribe and llama.cpp in turn R times per dtype: medians, and each
//                                 round's ratio to llama.cpp, lowest and highest)
//                 [--phase prefill|decode]   (one phase only: for profiling, e.g. under perf)
//   decoder_bench --model DIR --profile [--threads 1] [--dtypes f32]
//                 where the time goes, per op kind and node (the executor's profile): the
//                 decode graph (cache of 192 positions, as in the benchmark) and the prefill
//                 graph (128 tokens), and a decode step's time outside its graph (generate's
//                 decode time less its graph runs, timed in the same steps); no peers, no limits
//
// DIR holds a checkpoint with random weights. With --python (a Python with torch and
// transformers: <source>/.venv-ref; ignored, with a note, where there is none) the
// script --make names (in bench/: make_gpt2_124m.py, make_llama_124m.py) makes it
// there first when it is missing, and bench/torch_decoder.py is the peer (its JSON
// goes to WORK). Per thread count: read bandwidth and FMA peak, then per
// dtype: the decoder loaded with a single prefill bucket of 128, one warm-up (the
// graphs are built then), and medians of several runs of
//   prefill  generate(prompt, max_new_tokens = 1): prompt tokens / prefill_seconds
//   decode   generate(prompt, max_new_tokens = steps + 1): decode_steps / decode_seconds
// The limits (every figure is printed as a fraction of them), from the family's
// weight list and how its decode graph reads each weight (cost_model below):
//   decode   read bandwidth / bytes touched per token: the weights a step reads (a
//            table only gathered from, such as the token or position embedding, one
//            row; every other weight whole; GPT-2's tied wte twice over: one row, and
//            whole as the LM head) + the KV cache (the family's cache shapes:
//            key/value heads x head_dim per layer) over the mean context
//   prefill  compute peak / flop per prompt token: 2 x the weights multiplied in dots
//            (the matrix products) + causal attention (q.k and p.v over the query heads)
//            + the LM head for the last token, shared by the prompt. The peak is the
//            f32 FMA peak for f32 and f16 (F16C widens to f32), the AVX512_BF16
//            dot-product peak for bf16 where the CPU has it, the AVX-512 VNNI
//            int8 dot-product peak for q8 and q4 where the CPU has it (their
//            products' inputs are q8 blocks, multiplied in integers).
// With --llama-cpp DIR, llama.cpp is measured too, in the same run, interleaved
// with Scribe dtype by dtype (bench/llama_cpp.py: built once into DIR from PyPI's
// llama-cpp-python source with the machine's own instruction set, the checkpoint
// converted to GGUF in each dtype by the converter llama.cpp ships, llama-bench
// run): prefill of the prompt, decode after it, and decode from an empty cache
// ("decode0": llama-bench's tg; Scribe's prompt is then one token).
// q8: Scribe's 8-bit block weights (f32 activations) against llama.cpp's Q8_0 of
// the same checkpoint (the same blocks: 32 weights and an f16 scale); PyTorch has
// no such format and is not run for it. Its decode limit counts 34 bytes per 32
// elements of each matrix q8 holds, 4 bytes for the rest. q4: the same with 4-bit
// blocks against llama.cpp's Q4_0 (made by llama-quantize --pure, so every matrix
// is Q4_0 as Scribe's are), 18 bytes per 32 elements.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>


#include <nlohmann/json.hpp>

#include "limits.hpp"
#include "timing.hpp"
#include "profile.hpp"

#include <scribe/models/registry.hpp>
#include <scribe/runtime/decoder.hpp>

using namespace scribe;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t prompt_tokens = 128;

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, ',');)
        if (!part.empty()) out.push_back(part);
    return out;
}

// A --dtypes entry: the dtype the model runs in, and block weights (q8, q4) or not.
struct run_type {
    dtype type = dtype::f32;
    models::weight_format weights = models::weight_format::plain;
    bool q8() const { return weights != models::weight_format::plain; }
};
run_type parse_dtype(const std::string& s) {
    if (s == "q8") return {dtype::f32, models::weight_format::q8};
    if (s == "q4") return {dtype::f32, models::weight_format::q4};
    return {bench::parse_dtype(s, "decoder_bench"), models::weight_format::plain};
}
using bench::median;

void run_command(const std::string& cmd) { bench::run_command("decoder_bench", cmd); }

// What one token costs: bytes read by a decode step, flop of a prefill per prompt token.
struct costs {
    double decode_bytes = 0, weight_bytes = 0, kv_bytes = 0, prefill_flop = 0;
};

// What a model's tokens cost, in elements, from its weight list and how its decode
// graph reads each weight, with no formula per family:
//   decode   a weight the graph only gathers from (an embedding table: token ids,
//            positions) gives a step the rows it picks; any other use reads it whole
//            (a table tied as the LM head counts both ways); the KV cache of the
//            family's cache shapes is read over the mean context;
//   prefill  a prompt token goes through every weight the graph multiplies in a dot
//            (2 flop an element) but the LM head (the one with a vocab dim), which
//            only the last token's logits need; causal attention adds q.k and p.v
//            over the S(S+1)/2 pairs, 2 flop each per channel of the query heads
//            (the largest heads x head_dim of the weights).
struct cost_model {
    double parameters = 0, hidden = 0, n_layer = 0;
    double step_elements = 0;    // weight elements a decode step reads
    double step_q8_elements = 0;  // of those, the ones q8 holds in 8-bit blocks
    double kv_per_position = 0;  // KV cache elements per position, all layers
    double matrix_elements = 0;  // of the dot weights every prompt token goes through
    double lm_head_elements = 0;
    double attention_width = 0;  // query heads x head_dim

    // `context`: the positions cached before the first decode step (the prompt).
    costs at(run_type t, std::int64_t steps, std::int64_t context = prompt_tokens) const {
        const double S = static_cast<double>(prompt_tokens), bytes = static_cast<double>(info(t.type).bytes);
        costs k;
        k.weight_bytes = t.q8() ? (step_elements - step_q8_elements) * bytes +
                                      step_q8_elements * static_cast<double>(q8::block_bytes(t.weights)) / 32.0
                                : step_elements * bytes;
        // Decode step i (0-based) attends over context + i + 1 positions.
        const double mean_context = static_cast<double>(context) + (static_cast<double>(steps) + 1) / 2;
        k.kv_bytes = mean_context * kv_per_position * bytes;
        k.decode_bytes = k.weight_bytes + k.kv_bytes;
        const double total = 2 * S * matrix_elements + n_layer * 2 * 2 * attention_width * S * (S + 1) / 2 + 2 * lm_head_elements;
        k.prefill_flop = total / S;
        return k;
    }
};

template <class Family>
cost_model model_costs(const typename Family::config& c) {
    constexpr std::int64_t capacity = prompt_tokens;
    graph g("costs");
    Family::template build<f32>(g, c, models::graph_shape{.batch = 1, .seq = 1, .capacity = capacity, .decode = true});
    // Per parameter: the elements its gathers pick, whether anything else reads it
    // (whole), and whether a dot does.
    struct reads {
        double gathered = 0;
        bool whole = false, dot = false;
    };
    std::map<std::string, reads> use;
    const auto& nodes = g.nodes();
    for (const auto& n : nodes)
        for (std::size_t i = 0; i < n.operands.size(); ++i) {
            const auto& p = nodes[static_cast<std::size_t>(n.operands[i])];
            if (p.kind != op::parameter) continue;
            auto& u = use[p.label];
            if (n.kind == op::gather && i == 0) u.gathered += static_cast<double>(element_count(n.dims));
            else u.whole = true;
            u.dot = u.dot || n.kind == op::dot;
        }
    cost_model k;
    k.n_layer = static_cast<double>(c.n_layer);
    for (const auto& w : Family::weights(c)) {
        auto extent = [&](const char* dim) {
            for (const auto& d : w.dims)
                if (d.name == dim) return static_cast<double>(d.extent);
            return 0.0;
        };
        const double elements = static_cast<double>(element_count(w.dims));
        const auto u = use[w.name];
        k.parameters += elements;
        k.hidden = std::max(k.hidden, extent("hidden"));
        k.step_elements += u.gathered + (u.whole ? elements : 0);
        if (q8::plan(w.dims, w.in)) k.step_q8_elements += u.gathered + (u.whole ? elements : 0);
        k.attention_width = std::max(k.attention_width, extent("heads") * extent("head_dim"));
        if (u.dot) (extent("vocab") > 0 ? k.lm_head_elements : k.matrix_elements) += elements;
    }
    for (const auto& s : Family::cache_shapes(c, 1, capacity, 1))
        k.kv_per_position += static_cast<double>(element_count(s) / capacity);
    return k;
}

struct measured {
    double prefill_tps = NAN, decode_tps = NAN, decode_empty_tps = NAN;  // decode_empty: after a 1-token prompt
    int prefill_reps = 0, decode_reps = 0;
    std::vector<std::int32_t> tokens;  // greedy: the prefill's token, then one per decode step
    double load_s = 0, warmup_s = 0;
    std::map<std::int64_t, double> batched_tps;  // batch B -> decode tokens/s of B sequences decoded together
};

template <class Family>
measured run_scribe(const fs::path& dir, run_type type, unsigned threads, const std::vector<std::int32_t>& prompt,
                    std::int64_t steps, double budget, const std::string& phase, const std::vector<std::int64_t>& batches) {
    using clock_type = std::chrono::steady_clock;
    measured m;
    auto t0 = clock_type::now();
    runtime::decoder<Family> lm(dir, {.type = type.type, .weights = type.weights, .threads = threads, .buckets = {prompt_tokens}});
    m.load_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const runtime::generate_options one{.max_new_tokens = 1, .stop_at_eos = false};
    const runtime::generate_options many{.max_new_tokens = steps + 1, .stop_at_eos = false};
    t0 = clock_type::now();
    lm.generate({prompt}, one);  // builds the graphs: not timed
    lm.generate({prompt}, many);
    m.warmup_s = std::chrono::duration<double>(clock_type::now() - t0).count();

    const std::vector<std::int32_t> first(prompt.begin(), prompt.begin() + 1);
    if (phase != "prefill") lm.generate({first}, many);  // its graphs built: not timed
    std::vector<double> prefill, decode, decode_empty;
    const auto start = clock_type::now();
    for (std::size_t runs = 0; runs < 15 && (runs < 3 || std::chrono::duration<double>(clock_type::now() - start).count() < budget);
         ++runs) {
        if (phase != "decode") {
            const auto p = lm.generate({prompt}, one);
            prefill.push_back(static_cast<double>(p.prompt_tokens) / p.prefill_seconds);
        }
        if (phase != "prefill") {
            const auto d = lm.generate({prompt}, many);
            decode.push_back(static_cast<double>(d.decode_steps) / d.decode_seconds);
            m.tokens = d.tokens[0];
            const auto e = lm.generate({first}, many);
            decode_empty.push_back(static_cast<double>(e.decode_steps) / e.decode_seconds);
        }
    }
    if (!prefill.empty()) m.prefill_tps = median(prefill);
    if (!decode.empty()) m.decode_tps = median(decode);
    if (!decode_empty.empty()) m.decode_empty_tps = median(decode_empty);
    m.prefill_reps = static_cast<int>(prefill.size());
    m.decode_reps = static_cast<int>(decode.size());
    // Batched decode (llama-batched-bench's S_TG): B sequences, each its own prompt
    // of the same length (the prompt rotated), decoded together; tokens/s of all B.
    for (const auto b : batches) {
        if (phase == "prefill") break;
        std::vector<std::vector<std::int32_t>> prompts;
        for (std::int64_t i = 0; i < b; ++i) {
            prompts.push_back(prompt);
            std::rotate(prompts.back().begin(), prompts.back().begin() + i % static_cast<std::int64_t>(prompt.size()),
                        prompts.back().end());
        }
        lm.generate(prompts, many);  // builds the batch's graphs: not timed
        std::vector<double> tps;
        const auto from = clock_type::now();
        for (std::size_t runs = 0; runs < 15 && (runs < 3 || std::chrono::duration<double>(clock_type::now() - from).count() < budget);
             ++runs) {
            const auto d = lm.generate(prompts, many);
            tps.push_back(static_cast<double>(b * d.decode_steps) / d.decode_seconds);
        }
        m.batched_tps[b] = median(tps);
    }
    return m;
}

// Where the time goes: the decoder's own graphs on an executor with profile = true,
// the checkpoint's weights bound as the decoder binds them; per op kind and the
// slowest nodes. One warm run, then `runs` runs averaged.
template <class Family>
void profile(const fs::path& dir, run_type rt, unsigned threads, const std::vector<std::int32_t>& prompt, std::int64_t steps) {
    const auto type = rt.type;
    runtime::decoder<Family> lm(dir, {.type = type, .weights = rt.weights, .threads = threads, .buckets = {prompt_tokens}});
    const auto& c = lm.model_config();
    const auto capacity = std::min(c.n_positions, (prompt_tokens + steps + 1 + 31) / 32 * 32);
    const runtime::weight_files<Family> files(dir, c, 1, {0});
    std::map<std::string, cpu::array> weights;
    cpu::resident_weights resident;  // in 2 MiB pages, as the decoder keeps them
    for (auto& [name, a] : files.arrays(0, type)) {
        const auto& spec = *std::find_if(files.specs().begin(), files.specs().end(), [&](const auto& w) { return w.name == name; });
        if (const auto l = q8::plan(a.dims(), spec.in, rt.weights)) {  // as the decoder holds it
            cpu::named_arrays held;
            cpu::add_q8(held, name, a, *l, name);
            for (auto& [n, v] : held) weights[n] = resident.keep(std::move(v));
        } else {
            weights[name] = resident.keep(std::move(a));
        }
    }
    auto caches = [&] {
        std::vector<cpu::array> v;
        for (const auto& s : Family::cache_shapes(c, 1, capacity, 1)) v.emplace_back(type, s);
        return v;
    };
    // The steps' inputs by name: ids, positions or lengths, and the caches, each named
    // after the parameter its output (1, 2, ...) updates.
    auto with_caches = [&](const graph& g, cpu::named_arrays in) {
        auto fresh = caches();
        const auto params = g.parameters();
        for (const auto& a : g.aliases())
            if (a.output >= 1)
                in.emplace_back(g[params[static_cast<std::size_t>(a.parameter_number)]].label, std::move(fresh.at(a.output - 1)));
        return in;
    };
    // Binds the checkpoint's weights to run (an executor of g), as the decoder binds them.
    auto bound = [&](cpu::executor& run, const graph& g) {
        for (const auto& n : g.nodes())
            if (n.kind == op::parameter && weights.count(n.label)) run.bind(n.label, weights.at(n.label).view());
    };
    auto report = [&](const char* what, const graph& g, const std::function<cpu::named_arrays()>& inputs) {
        cpu::executor run(g, {.threads = threads, .profile = true});
        bound(run, g);
        run.run_donating(inputs());
        constexpr int runs = 10;
        std::vector<double> seconds(g.nodes().size());
        double total = 0;
        for (int r = 0; r < runs; ++r) {
            auto in = inputs();
            const auto t0 = std::chrono::steady_clock::now();
            run.run_donating(std::move(in));
            total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / runs;
            for (std::size_t i = 0; i < seconds.size(); ++i) seconds[i] += run.stats().node_seconds[i] / runs;
        }
        bench::print_profile(g, seconds, total,
                             std::string(what) + " graph, " + (rt.q8() ? std::string(name(rt.weights)) : std::string(name(type))) + ", " +
                                 std::to_string(threads) + " thread(s)");
    };
    std::vector<std::int32_t> one_id{prompt.front()}, position{static_cast<std::int32_t>(prompt.size())};
    const auto& dec = lm.decode_graph(capacity, 1);
    auto decode_inputs = [&] {
        cpu::named_arrays in;
        in.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", 1}, {"seq", 1}}, one_id.data(), 4));
        in.emplace_back("positions", cpu::array::borrow(dtype::s32, {{"batch", 1}}, position.data(), 4));
        return with_caches(dec, std::move(in));
    };
    report("decode", dec, decode_inputs);
    // A decode step's time outside its graph (choosing the token, the next step's
    // inputs: the runtime's own work): generate's decode time less its graph runs',
    // timed within the same steps, median of several generations.
    {
        const runtime::generate_options many{.max_new_tokens = steps + 1, .stop_at_eos = false};
        lm.generate({prompt}, many);  // builds its graphs: not timed
        std::vector<double> step_s, outside_s;
        for (int r = 0; r < 7; ++r) {
            const auto d = lm.generate({prompt}, many);
            const auto n = static_cast<double>(d.decode_steps);
            step_s.push_back(d.decode_seconds / n);
            outside_s.push_back((d.decode_seconds - d.decode_graph_seconds) / n);
        }
        const double step = bench::median(step_s), outside = bench::median(outside_s);
        std::printf("decode step through generate: %.3f ms; outside its graph: %.4f ms (%.2f%%), medians of 7 generations of %lld steps\n\n",
                    step * 1e3, outside * 1e3, 100 * outside / step, static_cast<long long>(steps));
    }
    // Speculative decoding's verify step over 5 tokens (4 drafted).
    std::vector<std::int32_t> five(5, prompt.front());
    const auto& ver = lm.verify_graph(capacity, 1, 5);
    report("verify (5 tokens)", ver, [&] {
        cpu::named_arrays in;
        in.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", 1}, {"seq", 5}}, five.data(), 20));
        in.emplace_back("positions", cpu::array::borrow(dtype::s32, {{"batch", 1}}, position.data(), 4));
        return with_caches(ver, std::move(in));
    });
    std::int32_t length = static_cast<std::int32_t>(prompt.size());
    const auto& pre = lm.prefill_graph(prompt_tokens, capacity, 1, true);
    report("prefill", pre, [&] {
        cpu::named_arrays in;
        in.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", 1}, {"seq", prompt_tokens}}, prompt.data(), prompt.size() * 4));
        in.emplace_back("lengths", cpu::array::borrow(dtype::s32, {{"batch", 1}}, &length, 4));
        return with_caches(pre, std::move(in));
    });
}

struct options {
    fs::path model_dir, work = fs::temp_directory_path() / "scribe_decoder_bench";
    fs::path llama_cpp;  // where bench/llama_cpp.py builds llama.cpp; empty: not measured
    std::string python, make, json_path, thread_list, dtype_list, phase;
    std::vector<std::int64_t> batches;  // batched decode's batch sizes (none: not measured)
    std::int64_t steps = 32;
    double budget = 6.0;
    int rounds = 1;  // Scribe and llama.cpp measured in turn this many times per dtype
    bool profiling = false;
};

// The median over the rounds of one figure, get(round).
template <class Round, class Get>
double median_over(const std::vector<Round>& rounds, const Get& get) {
    std::vector<double> v;
    for (const auto& r : rounds) v.push_back(get(r));
    return bench::median(v);
}

// The median of each figure over the rounds of one dtype (the greedy tokens, load
// and first-run times from the first round).
measured median_of(const std::vector<measured>& rounds) {
    measured m = rounds.front();
    auto med = [&](const auto& get) { return median_over(rounds, get); };
    m.prefill_tps = med([](const measured& r) { return r.prefill_tps; });
    m.decode_tps = med([](const measured& r) { return r.decode_tps; });
    m.decode_empty_tps = med([](const measured& r) { return r.decode_empty_tps; });
    for (auto& [b, tps] : m.batched_tps) tps = med([b = b](const measured& r) { return r.batched_tps.at(b); });
    return m;
}

// llama.cpp's report of one dtype with its figures the medians over the rounds.
nlohmann::json median_of(const std::vector<nlohmann::json>& rounds) {
    nlohmann::json j = rounds.front();
    auto med = [&](const auto& get) { return median_over(rounds, get); };
    for (const char* key : {"prefill_tokens_per_s", "decode_tokens_per_s", "decode_empty_tokens_per_s"})
        if (j.contains(key)) j[key] = med([&](const nlohmann::json& r) { return r.value(key, NAN); });
    if (j.contains("batched_decode_tokens_per_s"))
        for (auto& [b, tps] : j["batched_decode_tokens_per_s"].items())
            tps = med([&, b = b](const nlohmann::json& r) {
                return r.value("batched_decode_tokens_per_s", nlohmann::json::object()).value(b, NAN);
            });
    j["rounds"] = rounds;
    return j;
}

// The benchmark (or the profile) of a checkpoint of one family.
template <class Family>
int bench_model(const options& o, std::chrono::steady_clock::time_point wall0) {
    constexpr bool gpt2 = std::is_same_v<Family, models::gpt2_family>;
    const auto source = fs::path(SCRIBE_SOURCE_DIR) / "bench";
    const auto config = Family::config::load(o.model_dir / "config.json");
    std::vector<std::int32_t> prompt;  // the same formula as torch_decoder.py
    for (std::int64_t i = 0; i < prompt_tokens; ++i)
        prompt.push_back(static_cast<std::int32_t>((i * 7919 + 13) % config.vocab_size));

    if (o.profiling) {
        std::printf("%s\n", Family::summary(config).c_str());
        for (const auto& t : split(o.thread_list))
            for (const auto& name : split(o.dtype_list))
                profile<Family>(o.model_dir, parse_dtype(name), static_cast<unsigned>(bench::parse_count(t, "--threads", "decoder_bench", 1, 1024)), prompt, o.steps);
        return 0;
    }

    const auto model = model_costs<Family>(config);
    char title[64];
    std::snprintf(title, sizeof title, "%s %.0fM", Family::name, model.parameters / 1e6);
    nlohmann::json report = {{"model", o.model_dir.string()}, {"prompt_tokens", prompt_tokens}, {"decode_steps", o.steps},
                             {"n_layer", config.n_layer}, {"vocab_size", config.vocab_size}, {"family", Family::name},
                             {"summary", Family::summary(config)}, {"parameters", model.parameters}, {"hidden", model.hidden}};
    if constexpr (gpt2) report["n_embd"] = config.n_embd;
    struct row {
        unsigned threads;
        std::string type, phase;
        double scribe, llama, torch, limit;
        std::string torch_note;
        std::pair<double, double> llama_rounds{NAN, NAN};  // lowest and highest ratio to llama.cpp of one round
    };
    std::vector<row> rows;

    // llama.cpp: built (cached in o.llama_cpp), and the checkpoint as GGUF in each
    // dtype (cached in o.work, made again when the checkpoint is newer).
    const auto peer_script = (source / "llama_cpp.py").string();
    std::map<std::string, fs::path> gguf;
    if (!o.llama_cpp.empty()) {
        run_command(o.python + " " + peer_script + " build --dir " + o.llama_cpp.string() + " >/dev/null");
        for (const auto& name : split(o.dtype_list)) {
            const auto file = o.work / ("llama_cpp-" + name + ".gguf");
            if (!fs::exists(file) || fs::last_write_time(file) < fs::last_write_time(o.model_dir / "model.safetensors"))
                run_command(o.python + " " + peer_script + " convert " + o.model_dir.string() + " --dir " + o.llama_cpp.string() +
                            " --dtype " + (name == "q8" ? std::string("q8_0") : name == "q4" ? std::string("q4_0") : name) + " --out " + file.string() + " >/dev/null 2>&1");
            gguf[name] = file;
        }
        report["llama_cpp_dir"] = o.llama_cpp.string();
    }

    for (const auto& t : split(o.thread_list)) {
        const auto threads = static_cast<unsigned>(bench::parse_count(t, "--threads", "decoder_bench", 1, 1024));
        double bw = 0, peak = 0, bf16_peak = 0, int8_peak = 0;
        {
            cpu::thread_pool pool(threads);
            bw = bench::read_bandwidth_gbs(pool);
            peak = bench::fma_peak_gflops(pool);
            bf16_peak = bench::bf16_dot_peak_gflops(pool);
            int8_peak = bench::int8_dot_peak_gops(pool);
        }
        std::printf("=== %u thread(s): read bandwidth %.1f GB/s, f32 FMA peak %.1f GFLOP/s, bf16 dot peak %.1f GFLOP/s, "
                    "int8 dot peak %.1f Gop/s (measured now)\n", threads, bw, peak, bf16_peak, int8_peak);
        nlohmann::json run = {{"threads", threads}, {"read_bandwidth_gbs", bw}, {"fma_peak_gflops", peak},
                              {"bf16_dot_peak_gflops", bf16_peak}, {"int8_dot_peak_gops", int8_peak}};

        std::map<std::string, std::vector<measured>> our_rounds;
        std::map<std::string, std::vector<nlohmann::json>> llama_rounds;
        for (int round = 0; round < o.rounds; ++round)
        for (const auto& name : split(o.dtype_list)) {
            const auto type = parse_dtype(name);
            auto m = run_scribe<Family>(o.model_dir, type, threads, prompt, o.steps, o.budget, o.phase, o.batches);
            std::printf("scribe %-4s %u thr: prefill %7.1f tok/s (%d runs), decode %6.1f tok/s (%d runs); load %.1f s, "
                        "first runs %.1f s\n", name.c_str(), threads, m.prefill_tps, m.prefill_reps, m.decode_tps,
                        m.decode_reps, m.load_s, m.warmup_s);
            std::fflush(stdout);
            our_rounds[name].push_back(std::move(m));
            if (gguf.count(name)) {  // llama.cpp right after Scribe, in the same dtype
                const auto out = o.work / ("llama_cpp_" + name + "_" + t + ".json");
                std::string batches;
                for (const auto b : o.batches) batches += (batches.empty() ? " --batches " : ",") + std::to_string(b);
                run_command(o.python + " " + peer_script + " bench --dir " + o.llama_cpp.string() + " --gguf " +
                            gguf[name].string() + " --threads " + t + " --prompt " + std::to_string(prompt_tokens) +
                            " --gen " + std::to_string(o.steps) + " --depth " + std::to_string(prompt_tokens) + batches +
                            " --json " + out.string());
                nlohmann::json j;
                std::ifstream(out) >> j;
                llama_rounds[name].push_back(j);
                std::printf("llama.cpp %-4s %u thr: prefill %7.1f tok/s, decode %6.1f tok/s, decode0 %6.1f tok/s\n", name.c_str(),
                            threads, j.value("prefill_tokens_per_s", NAN), j.value("decode_tokens_per_s", NAN),
                            j.value("decode_empty_tokens_per_s", NAN));
                if (j.contains("note")) std::printf("llama.cpp %-4s: %s\n", name.c_str(), j["note"].get<std::string>().c_str());
                std::fflush(stdout);
            }
        }
        std::map<std::string, measured> ours;
        std::map<std::string, nlohmann::json> llama;
        for (const auto& [name, rounds] : our_rounds) ours[name] = median_of(rounds);
        for (const auto& [name, rounds] : llama_rounds) llama[name] = median_of(rounds);
        // The lowest and highest ratio to llama.cpp of one round, per dtype and phase.
        auto round_ratios = [&](const std::string& name, auto ours_of, const char* key) {
            std::pair<double, double> range{NAN, NAN};
            if (!llama_rounds.count(name) || o.rounds < 2) return range;
            const auto& a = our_rounds[name];
            const auto& b = llama_rounds[name];
            for (std::size_t r = 0; r < a.size() && r < b.size(); ++r) {
                const double q = ours_of(a[r]) / b[r].value(key, NAN);
                if (std::isnan(q)) continue;
                range.first = std::isnan(range.first) ? q : std::min(range.first, q);
                range.second = std::isnan(range.second) ? q : std::max(range.second, q);
            }
            return range;
        };

        nlohmann::json peer;
        std::string torch_dtypes;  // PyTorch runs the float dtypes
        for (const auto& name : split(o.dtype_list))
            if (!parse_dtype(name).q8()) torch_dtypes += (torch_dtypes.empty() ? "" : ",") + name;
        if (!o.python.empty() && !torch_dtypes.empty()) {
            const auto out = o.work / ("torch_" + t + ".json");
            run_command(o.python + " " + (source / "torch_decoder.py").string() + " " + o.model_dir.string() + " --threads " +
                        t + " --dtypes " + torch_dtypes + " --decode-steps " + std::to_string(o.steps) + " --json " +
                        out.string() + " >/dev/null");
            std::ifstream(out) >> peer;
            run["torch_version"] = peer["torch"];
            run["transformers_version"] = peer["transformers"];
        }

        for (const auto& name : split(o.dtype_list)) {
            const auto& m = ours[name];
            const auto k = model.at(parse_dtype(name), o.steps);
            const double compute = name == "bf16"                                     ? std::max(bf16_peak, peak)
                                   : (name == "q8" || name == "q4") && int8_peak > 0 ? int8_peak
                                                                                     : peak;
            const auto k0 = model.at(parse_dtype(name), o.steps, 1);  // after a 1-token prompt
            const double decode_limit = bw * 1e9 / k.decode_bytes, prefill_limit = compute * 1e9 / k.prefill_flop;
            const double decode_empty_limit = bw * 1e9 / k0.decode_bytes;
            const auto& lj = llama.count(name) ? llama[name] : nlohmann::json::object();
            const double llama_prefill = lj.value("prefill_tokens_per_s", NAN), llama_decode = lj.value("decode_tokens_per_s", NAN),
                         llama_decode_empty = lj.value("decode_empty_tokens_per_s", NAN);
            double torch_prefill = NAN, torch_decode = NAN;
            std::string note;
            nlohmann::json tj;
            if (peer.contains("runs") && peer["runs"].contains(name)) {
                tj = peer["runs"][name];
                if (tj.contains("error")) {
                    note = tj["error"].get<std::string>();
                } else {
                    torch_prefill = tj["prefill_tokens_per_s"].get<double>();
                    torch_decode = tj["decode_tokens_per_s"].get<double>();
                }
            }
            // Greedy tokens against PyTorch's in the same dtype (random weights: near-ties may part them).
            std::int64_t same = -1;
            if (tj.contains("greedy_tokens")) {
                const auto theirs = tj["greedy_tokens"].get<std::vector<std::int32_t>>();
                same = 0;
                while (static_cast<std::size_t>(same) < std::min(theirs.size(), m.tokens.size()) &&
                       theirs[static_cast<std::size_t>(same)] == m.tokens[static_cast<std::size_t>(same)])
                    ++same;
            }
            rows.push_back({threads, name, "prefill", m.prefill_tps, llama_prefill, torch_prefill, prefill_limit, note,
                            round_ratios(name, [](const measured& r) { return r.prefill_tps; }, "prefill_tokens_per_s")});
            rows.push_back({threads, name, "decode", m.decode_tps, llama_decode, torch_decode, decode_limit, note,
                            round_ratios(name, [](const measured& r) { return r.decode_tps; }, "decode_tokens_per_s")});
            rows.push_back({threads, name, "decode0", m.decode_empty_tps, llama_decode_empty, NAN, decode_empty_limit, note,
                            round_ratios(name, [](const measured& r) { return r.decode_empty_tps; }, "decode_empty_tokens_per_s")});
            nlohmann::json batched = nlohmann::json::array();
            for (const auto& [b, tps] : m.batched_tps) {
                // B tokens per step, which reads the weights once and B sequences' caches.
                const double limit = static_cast<double>(b) * bw * 1e9 / (k.weight_bytes + static_cast<double>(b) * k.kv_bytes);
                double theirs = NAN;
                if (lj.contains("batched_decode_tokens_per_s") && lj["batched_decode_tokens_per_s"].contains(std::to_string(b)))
                    theirs = lj["batched_decode_tokens_per_s"][std::to_string(b)].template get<double>();
                rows.push_back({threads, name, "decode x" + std::to_string(b), tps, theirs, NAN, limit, note});
                batched.push_back({{"batch", b}, {"scribe_tokens_per_s", tps}, {"llama_cpp_tokens_per_s", theirs},
                                   {"vs_llama_cpp", tps / theirs}, {"limit_tokens_per_s", limit}, {"of_limit", tps / limit}});
            }
            nlohmann::json prefill = {{"scribe_tokens_per_s", m.prefill_tps}, {"torch_tokens_per_s", torch_prefill},
                                      {"vs_torch", m.prefill_tps / torch_prefill}, {"limit_tokens_per_s", prefill_limit},
                                      {"of_limit", m.prefill_tps / prefill_limit}, {"torch_of_limit", torch_prefill / prefill_limit},
                                      {"flop_per_token", k.prefill_flop}, {"peak_gflops", compute}, {"runs", m.prefill_reps}};
            nlohmann::json decode = {{"scribe_tokens_per_s", m.decode_tps}, {"torch_tokens_per_s", torch_decode},
                                     {"vs_torch", m.decode_tps / torch_decode}, {"limit_tokens_per_s", decode_limit},
                                     {"of_limit", m.decode_tps / decode_limit}, {"torch_of_limit", torch_decode / decode_limit},
                                     {"bytes_per_token", k.decode_bytes}, {"weight_bytes", k.weight_bytes}, {"kv_bytes", k.kv_bytes},
                                     {"scribe_gbs", m.decode_tps * k.decode_bytes / 1e9}, {"runs", m.decode_reps}};
            nlohmann::json decode_empty = {{"scribe_tokens_per_s", m.decode_empty_tps}, {"limit_tokens_per_s", decode_empty_limit},
                                           {"of_limit", m.decode_empty_tps / decode_empty_limit}, {"bytes_per_token", k0.decode_bytes}};
            if (!lj.empty()) {
                prefill["llama_cpp_tokens_per_s"] = llama_prefill;
                prefill["vs_llama_cpp"] = m.prefill_tps / llama_prefill;
                prefill["llama_cpp_of_limit"] = llama_prefill / prefill_limit;
                decode["llama_cpp_tokens_per_s"] = llama_decode;
                decode["vs_llama_cpp"] = m.decode_tps / llama_decode;
                decode["llama_cpp_of_limit"] = llama_decode / decode_limit;
                decode_empty["llama_cpp_tokens_per_s"] = llama_decode_empty;
                decode_empty["vs_llama_cpp"] = m.decode_empty_tps / llama_decode_empty;
                decode_empty["llama_cpp_of_limit"] = llama_decode_empty / decode_empty_limit;
                decode_empty["llama_cpp"] = lj;
            }
            nlohmann::json scribe_rounds = nlohmann::json::array();
            for (const auto& r : our_rounds[name])
                scribe_rounds.push_back({{"prefill_tokens_per_s", r.prefill_tps}, {"decode_tokens_per_s", r.decode_tps},
                                         {"decode_empty_tokens_per_s", r.decode_empty_tps}});
            run["results"].push_back({{"dtype", name}, {"prefill", prefill}, {"decode", decode}, {"decode_empty", decode_empty},
                                      {"scribe_rounds", scribe_rounds},
                                      {"batched_decode", batched}, {"greedy_tokens_equal_to_torch", same},
                                      {"torch_error", note.empty() ? nlohmann::json() : nlohmann::json(note)},
                                      {"load_s", m.load_s}, {"first_runs_s", m.warmup_s}});
        }
        report["runs"].push_back(run);
    }

    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    report["wall_s"] = wall;
    std::printf("\n%s (random weights), %lld-token prompt, %lld decode steps; tokens/s, medians%s\n", title,
                static_cast<long long>(prompt_tokens), static_cast<long long>(o.steps),
                o.rounds > 1 ? (" of " + std::to_string(o.rounds) + " rounds (Scribe and llama.cpp in turn)").c_str() : "");
    std::printf("%-4s %-5s %-10s %9s %9s %9s %11s %9s %9s %9s %9s %9s %9s\n", "thr", "dtype", "phase", "scribe", "llama.cpp",
                "vs llama", "rounds", "torch", "vs torch", "limit", "of limit", "llama/lim", "torch/lim");
    for (const auto& r : rows) {
        auto text = [](double v, const char* format) {
            char s[32] = "-";
            if (!std::isnan(v)) std::snprintf(s, sizeof s, format, v);
            return std::string(s);
        };
        const auto torch_text = std::isnan(r.torch) && !r.torch_note.empty() ? std::string("error") : text(r.torch, "%.1f");
        const auto rounds_text = std::isnan(r.llama_rounds.first) ? std::string("-")
                                                                  : text(r.llama_rounds.first, "%.2f") + "-" + text(r.llama_rounds.second, "%.2f");
        std::printf("%-4u %-5s %-10s %9.1f %9s %9s %11s %9s %9s %9.0f %8.0f%% %9s %9s\n", r.threads, r.type.c_str(), r.phase.c_str(),
                    r.scribe, text(r.llama, "%.1f").c_str(), text(r.scribe / r.llama, "%.2fx").c_str(), rounds_text.c_str(),
                    r.phase == "decode0" || r.phase.starts_with("decode x") ? "-" : torch_text.c_str(), text(r.scribe / r.torch, "%.2fx").c_str(), r.limit,
                    100 * r.scribe / r.limit, text(100 * r.llama / r.limit, "%.0f%%").c_str(),
                    text(100 * r.torch / r.limit, "%.0f%%").c_str());
    }
    for (const auto& r : rows)
        if (r.phase == "prefill" && !r.torch_note.empty())
            std::printf("torch %s, %u thread(s): %s\n", r.type.c_str(), r.threads, r.torch_note.c_str());
    std::printf("limits: decode = read bandwidth / (weights + KV cache) bytes per token; prefill = compute peak / flop "
                "per prompt token (bf16: the faster of the f32 FMA peak and the bf16 dot peak, AMX's tdpbf16ps where the CPU has it, else AVX512_BF16's vdpbf16ps; q8, q4: the AVX-512 VNNI int8 dot peak, or the f32 FMA peak where the CPU has no VNNI and the products run on the f32 GEMM). decode0: decode from an empty cache (llama-bench's tg). "
                "decode xB: B sequences decoded together after their prompts, tokens/s of all B (llama-batched-bench's S_TG); "
                "limit: B x read bandwidth / (weights + B KV caches) bytes.%s\n",
                o.llama_cpp.empty() ? " llama.cpp not measured (--llama-cpp DIR)." : "");
    std::printf("decoder_bench: %.0f s in all\n", wall);
    if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(2) << "\n";
    return 0;
}

}  // namespace

const char* usage = R"(usage: decoder_bench --model DIR [options]
       decoder_bench --model DIR --profile [--threads 1] [--dtypes f32]

Prefill (128-token prompt) and decode tokens/s of a decoder checkpoint on the CPU,
against PyTorch and llama.cpp measured in the same run, and against the read
bandwidth and compute peak measured now; --profile prints where a step's time goes.

options:
  --model DIR        the checkpoint (a Hugging Face folder; made by --make if missing)
  --make SCRIPT      bench/ script that makes it (make_gpt2_124m.py, make_llama_124m.py)
  --python PY        a Python with torch and transformers (.venv-ref): the PyTorch peer
  --llama-cpp DIR    llama.cpp built by bench/llama_cpp.py: the llama.cpp peer
  --dir WORK         working folder for the peers' files
  --json FILE        write the report as JSON
  --threads LIST     thread counts (default 1,2)
  --dtypes LIST      f32,f16,bf16,q8,q4 (default all)
  --steps N          decode steps per run (default 32)
  --budget S         seconds of repeated runs per cell (default 6: 3 to 15 runs)
  --rounds R         measure Scribe and llama.cpp in turn R times per dtype (default 1;
                     PyTorch once): each figure the median of its rounds, and the
                     rounds column the lowest and highest ratio to llama.cpp of one
                     round (this host's speed drifts by several percent over minutes)
  --phase P          prefill or decode only (for perf)
  --batches LIST     also decode B sequences together, for each B (4,16), against
                     llama-batched-bench (default: batch 1 only)
  --profile          the executor's per-op profile instead of the benchmark, and a
                     decode step's time outside its graph (the runtime's own work)
)";

int main(int argc, char** argv) try {
    const auto wall0 = std::chrono::steady_clock::now();
    options o;
    for (int i = 1; i < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") return std::printf("%s", usage), 0;
        if (a == "--profile") {
            o.profiling = true;
            --i;
            continue;
        }
        if (i + 1 >= argc) throw error("decoder_bench: " + a + " needs a value");
        const std::string v = argv[i + 1];
        if (a == "--model") o.model_dir = v;
        else if (a == "--make") o.make = v;
        else if (a == "--python") o.python = v;
        else if (a == "--dir") o.work = v;
        else if (a == "--json") o.json_path = v;
        else if (a == "--threads") o.thread_list = v;
        else if (a == "--dtypes") o.dtype_list = v;
        else if (a == "--steps") o.steps = bench::parse_count(v, a, "decoder_bench", 1, 1 << 20);
        else if (a == "--budget") o.budget = bench::parse_positive(v, a, "decoder_bench");
        else if (a == "--rounds") o.rounds = static_cast<int>(bench::parse_count(v, a, "decoder_bench", 1, 1000));
        else if (a == "--phase") o.phase = v;
        else if (a == "--batches") {
            for (const auto& b : split(v)) o.batches.push_back(bench::parse_count(b, a, "decoder_bench", 2, 256));
        }
        else if (a == "--llama-cpp") o.llama_cpp = v;
        else throw error("decoder_bench: unknown option " + a);
    }
    if (o.thread_list.empty()) o.thread_list = o.profiling ? "1" : "1,2";
    if (o.dtype_list.empty()) o.dtype_list = o.profiling ? "f32" : "f32,f16,bf16,q8,q4";
    if (o.model_dir.empty())
        throw error(std::string("--model DIR is required\n") + usage);
    fs::create_directories(o.work);
    const auto make = fs::path(SCRIBE_SOURCE_DIR) / "bench" / o.make;
    if (!o.python.empty() && !fs::exists(o.python)) {
        std::printf("decoder_bench: no Python at %s (scribe_setup_reference in scripts/setup.sh makes .venv-ref): "
                    "PyTorch is not measured\n", o.python.c_str());
        o.python.clear();
    }
    if (!o.llama_cpp.empty() && o.python.empty()) {
        std::printf("decoder_bench: llama.cpp needs the reference Python (its converter runs on torch): not measured\n");
        o.llama_cpp.clear();
    }
    if (!o.python.empty() && !o.make.empty()) run_command(o.python + " " + make.string() + " " + o.model_dir.string());
    if (!fs::exists(o.model_dir / "model.safetensors")) {
        std::fprintf(stderr, "decoder_bench: no checkpoint in %s; make one with `.venv-ref/bin/python bench/%s %s` "
                     "(scribe_setup_reference in scripts/setup.sh installs .venv-ref)\n",
                     o.model_dir.c_str(), o.make.empty() ? "make_<model>.py" : o.make.c_str(), o.model_dir.c_str());
        return 77;  // skipped
    }
    return models::with_family(o.model_dir, [&]<class Family>() { return bench_model<Family>(o, wall0); });
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
