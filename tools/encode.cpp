// tools/encode.cpp — `scribe classify` and `scribe embed`: an encoder folder
// (BERT, RoBERTa, DistilBERT) run on texts or text pairs, with its tokenizer,
// automatic buckets and tensor parallelism (threads, or MPI processes).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/io/encoder_tokenizer.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/encoder.hpp>
#include <scribe/runtime/encoder_text.hpp>

#include "cli.hpp"
#include "manifest.hpp"

namespace scribe::cli {

namespace {

const char* usage_classify = R"(usage: scribe classify [MODEL] --text A [--pair B] [options]

Classifies each text, or pair of texts, with a sequence-classification encoder
(a Hugging Face folder of BertForSequenceClassification,
RobertaForSequenceClassification or DistilBertForSequenceClassification) and
prints its labels (config.json's id2label) with their probabilities, the most
likely first: a softmax over the labels (a sigmoid each for multi-label models;
the raw values for regression).

options:
  --text TEXT            a text; repeat for a batch
  --pair TEXT            the second text of a pair, for the --text of the same place
                         (a paraphrase, an entailment): [CLS] A [SEP] B [SEP]
  --batch-file FILE      inputs from a file, one a line: the text, and after a tab
                         its pair (- reads standard input)
  --truncate             cut an input longer than the model's positions as the
                         tokenizer does (the longer text of a pair first); without
                         it such an input is refused, naming it
  --top K                print the K most likely labels (default: all)
  --json                 one JSON object a line: text, pair, label, the scores by
                         label, and the logits
  --dtype T              f32, f16 or bf16 (default f32)
  --threads N            CPU threads (default: all)
  --buckets A,B,...      the lengths inputs are padded to (default 128 and 512 below
                         the model's positions, and its positions)
  --tp N                 tensor-parallel degree: N ranks as threads, or under
                         `mpirun -np N` as processes (default 1, or mpirun's count)
  --collective-timeout S fail when a rank waits more than S seconds at one exchange
)";

const char* usage_embed = R"(usage: scribe embed [MODEL] --text A [options]

Prints the embedding of each text (or pair) from an encoder folder (BERT, RoBERTa,
DistilBERT: a sentence-embedding checkpoint, a *Model, or any of their heads'
folders): the last hidden state averaged over the input's tokens (mean pooling,
sentence-transformers' default), or the first token's ([CLS], <s>). The pooling
defaults to what the folder's 1_Pooling/config.json says, else mean.

options:
  --text TEXT            a text; repeat for a batch
  --pair TEXT            the second text of a pair, for the --text of the same place
  --batch-file FILE      inputs from a file, one a line (text, tab, pair)
  --pooling P            mean or cls
  --normalize            scale each vector to length 1 (for cosine similarity)
  --out FILE             write the vectors to FILE as JSON ({"model", "pooling",
                         "dimension", "embeddings": [[...], ...]}) instead of printing
  --truncate             cut inputs longer than the model's positions (see classify)
  --dtype, --threads, --buckets, --tp, --collective-timeout  as for classify
)";

using runtime::text_input;

// The inputs of --text/--pair or --batch-file (the same on every rank).
std::vector<text_input> read_inputs(const args& a, cpu::communicator* comm) {
    std::vector<text_input> in;
    if (const auto f = a.value("batch-file")) {
        if (!a.prompts.empty() || !a.pairs.empty()) throw error("give either --text (and --pair) or --batch-file, not both");
        // Under mpirun only rank 0 has standard input: it reads, every rank gets the text.
        const auto text = shared_text(comm, [&] { return read_file_arg(*f, "--batch-file", "the batch file"); });
        std::size_t at = 0, line = 0;
        while (at < text.size()) {
            auto end = text.find('\n', at);
            if (end == std::string::npos) end = text.size();
            auto row = text.substr(at, end - at);
            at = end + 1;
            ++line;
            if (!row.empty() && row.back() == '\r') row.pop_back();
            if (row.empty()) continue;
            const auto tab = row.find('\t');
            if (tab != std::string::npos && row.find('\t', tab + 1) != std::string::npos)
                throw error("--batch-file " + *f + ": line " + std::to_string(line) + " has more than two tab-separated texts");
            if (tab == std::string::npos)
                in.push_back({row, std::nullopt});
            else
                in.push_back({row.substr(0, tab), row.substr(tab + 1)});
        }
        if (in.empty()) throw error("--batch-file " + *f + " holds no inputs (one text a line, a tab before its pair)");
        return in;
    }
    if (a.prompts.empty()) throw error("give a text: --text TEXT (repeat it for a batch), or --batch-file FILE");
    if (!a.pairs.empty() && a.pairs.size() != a.prompts.size())
        throw error(std::to_string(a.prompts.size()) + " --text but " + std::to_string(a.pairs.size()) +
                    " --pair: give one --pair for every --text, or none");
    for (std::size_t i = 0; i < a.prompts.size(); ++i)
        in.push_back({a.prompts[i], a.pairs.empty() ? std::nullopt : std::optional(a.pairs[i])});
    return in;
}

// The load options every encoder command takes.
runtime::load_options encoder_load_options(const args& a, cpu::communicator* comm) {
    runtime::load_options lo;
    lo.threads = static_cast<unsigned>(a.integer("threads", 0, 0, max_threads));
    if (auto b = a.value("buckets")) lo.buckets = parse_list(*b, "--buckets");
    lo.tp = a.integer("tp", comm ? comm->size() : 1, 1, max_tp);
    if (comm && lo.tp != comm->size())
        throw error("--tp " + std::to_string(lo.tp) + " under mpirun -np " + std::to_string(comm->size()) + ": give --tp " +
                    std::to_string(comm->size()) + " (one rank per process)");
    lo.comm = comm;
    const auto md = parse_model_dtype(a.value("dtype").value_or("f32"));
    if (md.weights != models::weight_format::plain) throw error("--dtype " + *a.value("dtype") + ": encoders run in f32, f16 or bf16");
    lo.type = md.type;
    if (a.value("collective-timeout"))
        lo.collective_timeout = std::chrono::milliseconds(std::llround(1000 * a.number("collective-timeout", 0, 0.001, 86400)));
    return lo;
}

// Tokenizes the inputs for the model and runs them (runtime/encoder_text.hpp).
template <class Family>
std::vector<runtime::encoding> run_inputs(runtime::encoder<Family>& m, const io::encoder_tokenizer& tok,
                                          const std::vector<text_input>& inputs, bool truncate, bool quiet, bool mean) {
    runtime::encode_text_options o{.truncate = truncate, .on_truncate = {}, .truncate_hint = "--truncate", .mean = mean};
    if (!quiet)
        o.on_truncate = [](std::size_t i, std::size_t dropped, std::size_t kept) {
            std::fprintf(stderr, "note: input %zu truncated by %zu tokens to %zu\n", i, dropped, kept);
        };
    return runtime::encode_texts(m, tok, inputs, o);
}

template <class Family>
void report_speed(const runtime::encoder<Family>& m, std::size_t inputs) {
    std::fprintf(stderr, "%zu input(s), %lld tokens (%lld with padding) in %.1f ms: %.1f tokens/s\n", inputs,
                 static_cast<long long>(m.tokens_run()), static_cast<long long>(m.padded_tokens_run()), m.run_seconds() * 1e3,
                 static_cast<double>(m.tokens_run()) / std::max(m.run_seconds(), 1e-9));
}

template <class Family>
int classify(const args& a, cpu::communicator* comm) {
    const bool quiet = comm && comm->rank() != 0;
    const auto inputs = read_inputs(a, comm);
    const auto top = a.integer("top", 0, 0, max_count);
    auto lo = encoder_load_options(a, comm);
    const auto c = Family::config::load(a.model / "config.json");
    if (c.classifier != Family::config::head::classifier)
        throw error((a.model / "config.json").string() + ": the model has no classifier (architectures " +
                    (c.architecture.empty() ? std::string("not given") : c.architecture) +
                    "); classify needs a *ForSequenceClassification checkpoint (scribe embed runs the others)");
    const auto tok = io::encoder_tokenizer::from_folder(a.model, c.model_type);
    runtime::encoder<Family> m(a.model, lo);
    const auto out = run_inputs(m, tok, inputs, a.flag("truncate"), quiet, false);  // labels need no mean
    if (quiet) return 0;
    const auto& labels = m.labels();
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::vector<std::size_t> order(labels.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](auto x, auto y) { return out[i].scores[x] > out[i].scores[y] || (out[i].scores[x] == out[i].scores[y] && x < y); });
        if (a.flag("json")) {
            nlohmann::json j = {{"text", inputs[i].text}, {"label", labels[order[0]]}, {"logits", out[i].logits}};
            j["pair"] = inputs[i].pair ? nlohmann::json(*inputs[i].pair) : nlohmann::json();
            nlohmann::json scores = nlohmann::json::object();
            for (std::size_t k = 0; k < labels.size(); ++k) scores[labels[k]] = out[i].scores[k];
            j["scores"] = scores;
            std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
            continue;
        }
        std::printf("[%zu] %s%s%s\n", i, inputs[i].text.c_str(), inputs[i].pair ? "  ||  " : "", inputs[i].pair ? inputs[i].pair->c_str() : "");
        const auto shown = top ? std::min<std::size_t>(static_cast<std::size_t>(top), order.size()) : order.size();
        for (std::size_t k = 0; k < shown; ++k)
            std::printf("    %-24s %.4f\n", labels[order[k]].c_str(), out[i].scores[order[k]]);
    }
    report_speed(m, inputs.size());
    return 0;
}

template <class Family>
int embed(const args& a, cpu::communicator* comm) {
    const bool quiet = comm && comm->rank() != 0;
    const auto inputs = read_inputs(a, comm);
    std::string pooling = a.value("pooling").value_or(runtime::folder_pooling(a.model).value_or("mean"));
    if (pooling != "mean" && pooling != "cls") throw error("--pooling takes mean or cls, not \"" + io::printable(pooling) + "\"");
    auto lo = encoder_load_options(a, comm);
    const auto c = Family::config::load(a.model / "config.json");
    const auto tok = io::encoder_tokenizer::from_folder(a.model, c.model_type);
    runtime::encoder<Family> m(a.model, lo);
    auto out = run_inputs(m, tok, inputs, a.flag("truncate"), quiet, pooling == "mean");
    if (quiet) return 0;
    std::vector<std::vector<float>> vectors;
    for (auto& e : out) {
        auto v = pooling == "mean" ? e.mean : e.first;
        if (a.flag("normalize")) runtime::normalize(v);
        vectors.push_back(std::move(v));
    }
    if (const auto file = a.value("out")) {
        const nlohmann::json j = {{"model", a.model.string()}, {"pooling", pooling}, {"normalized", a.flag("normalize")},
                                  {"dimension", m.hidden_size()}, {"embeddings", vectors}};
        std::ofstream f(*file);
        f << j.dump() << "\n";
        if (!f) throw error("--out " + *file + ": cannot write the file");
        std::fprintf(stderr, "wrote %zu vectors of %lld to %s\n", vectors.size(), static_cast<long long>(m.hidden_size()), file->c_str());
    } else {
        for (std::size_t i = 0; i < vectors.size(); ++i) {
            std::printf("[%zu]", i);
            for (const auto x : vectors[i]) std::printf(" %.6g", static_cast<double>(x));
            std::printf("\n");
        }
    }
    report_speed(m, inputs.size());
    return 0;
}

// One module per bucket: DIR/encoder_<bucket>.hlo and .pb, and manifest.json.
template <class Family>
int export_encoder(const args& a) {
    for (const char* f : {"train", "all-logits"})
        if (a.flag(f)) throw error(std::string("--") + f + " is for decoders; an encoder exports one inference module per bucket");
    for (const char* v : {"capacity", "dp", "bucket-size", "precision", "seed", "optimizer", "lr"})
        if (a.value(v)) throw error(std::string("--") + v + " is for decoders; an encoder exports one inference module per bucket");
    const auto c = Family::config::load(a.model / "config.json");
    const auto tp = a.integer("tp", 1, 1, max_tp);
    Family::check_tp(c, tp);
    const auto batch = a.integer("batch", 1, 1, runtime::max_batch);
    const auto md = parse_model_dtype(a.value("dtype").value_or("f32"));
    if (md.weights != models::weight_format::plain) throw error("--dtype " + *a.value("dtype") + ": encoders export in f32, f16 or bf16");
    std::vector<int> ranks(static_cast<std::size_t>(tp));
    std::iota(ranks.begin(), ranks.end(), 0);
    const runtime::weight_files<Family> files(a.model, c, tp, ranks);  // the folder's weights checked as classify checks them
    std::vector<std::int64_t> buckets;
    if (a.value("buckets")) {
        buckets = parse_list(*a.value("buckets"), "--buckets");
    } else {
        for (std::int64_t b : {128, 512})
            if (b < c.n_positions) buckets.push_back(b);
        buckets.push_back(c.n_positions);
    }
    for (const auto b : buckets)
        if (b > c.n_positions)
            throw error("--buckets: " + std::to_string(b) + " is longer than the model's " + std::to_string(c.n_positions) + " positions");
    const fs::path out = a.value("out").value_or("hlo");
    make_out_folder(out);
    std::map<std::string, std::string> split;
    for (const auto& w : Family::weights(c, tp))
        if (!w.split.empty()) split[w.name] = w.split;
    const auto groups = parallel::mesh{.degree = tp}.groups().groups;
    nlohmann::json manifest = {{"model", a.model.string()}, {"kind", "encoder"}, {"family", Family::name}, {"dtype", name(md.type)},
                               {"batch", batch}, {"tp", tp}, {"labels", c.labels}, {"modules", nlohmann::json::array()}};
    std::vector<std::string> names = {"mean", "first"};
    if (c.classifier == Family::config::head::classifier) names.push_back("logits");
    for (const auto b : buckets) {
        graph g("encoder_" + std::to_string(b));
        const typename Family::graph_shape shape{.batch = batch, .seq = b, .tp = tp};
        if (md.type == dtype::f16) Family::template build<f16>(g, c, shape);
        else if (md.type == dtype::bf16) Family::template build<bf16>(g, c, shape);
        else Family::template build<f32>(g, c, shape);
        auto m = describe(g, hlo::write(g, out, g.name()), names);
        m["kind"] = "encoder";
        m["bucket"] = b;
        m["num_replicas"] = tp;
        m["ranks"] = groups.front();
        m["replica_groups"] = tp > 1 ? nlohmann::json(groups) : nlohmann::json::array();
        if (tp > 1)
            for (auto& p : m["parameters"])
                if (const auto it = split.find(p["name"].get<std::string>()); it != split.end()) p["split"] = it->second;
        manifest["modules"].push_back(m);
        std::printf("wrote %s\n", (out / (g.name() + ".hlo")).string().c_str());
    }
    std::ofstream(out / "manifest.json") << manifest.dump(2) << "\n";
    std::printf("wrote %s\n", (out / "manifest.json").string().c_str());
    return 0;
}

std::vector<std::string> common_values() {
    return {"text", "pair", "batch-file", "dtype", "threads", "buckets", "tp", "collective-timeout"};
}

}  // namespace

int export_encoder_hlo(const args& a) {
    return models::with_encoder(a.model, [&]<class Family>() { return export_encoder<Family>(a); });
}

int classify_command(int argc, char** argv, cpu::communicator* comm) {
    auto values = common_values();
    values.push_back("top");
    const auto a = parse(argc, argv, values, {"json", "truncate", "help"});
    if (a.flag("help")) return std::printf("%s", usage_classify), 0;
    check_model_folder(a.model);
    return models::with_encoder(a.model, [&]<class Family>() { return classify<Family>(a, comm); });
}

int embed_command(int argc, char** argv, cpu::communicator* comm) {
    auto values = common_values();
    values.insert(values.end(), {"pooling", "out"});
    const auto a = parse(argc, argv, values, {"normalize", "truncate", "help"});
    if (a.flag("help")) return std::printf("%s", usage_embed), 0;
    check_model_folder(a.model);
    return models::with_encoder(a.model, [&]<class Family>() { return embed<Family>(a, comm); });
}

}  // namespace scribe::cli
