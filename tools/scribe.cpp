// scribe — the command-line program: generate text with a Hugging Face decoder
// folder (GPT-2, GPT-J, OPT, LLaMA, Mistral) on the CPU, export its prefill and
// decode graphs as XLA HLO, inspect it, shard it for tensor parallelism; classify
// and embed texts with an encoder (BERT, RoBERTa, DistilBERT: tools/encode.cpp).
//
//   scribe generate [MODEL] [--prompt TEXT]... [options]
//   scribe export-hlo [MODEL] [--out DIR] [options]
//   scribe inspect [MODEL] [options]
//   scribe shard [MODEL] --tp N --out DIR
//   scribe compile [MODEL] --out DIR [--tp N] [--dtype T] ...   (tools/compile.cpp)
//   mpirun -np N scribe generate [MODEL] --tp N ...   (ranks as processes)
//
// MODEL defaults to the demo model kept in the source tree (models/demo-gpt2).
// MODEL may be an artifact `scribe compile` wrote: generate starts it at once.
// `scribe COMMAND --help` explains each command.
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <scribe/hlo/export.hpp>
#include <scribe/parallel/weights.hpp>
#include <scribe/io/tokenizer.hpp>
#include <scribe/core/checked.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/decoder.hpp>
#include <scribe/runtime/speculative.hpp>
#include <scribe/train/causal_lm.hpp>
#include <scribe/train/optimizer.hpp>
#include <scribe/train/precision.hpp>
#ifdef SCRIBE_WITH_MPI
#include <scribe/parallel/mpi.hpp>
#endif

#include "cli.hpp"
#include "manifest.hpp"

using namespace scribe;
using namespace scribe::cli;

namespace {

const char* usage_main = R"(scribe — typed transformer graphs: run decoder checkpoints on the CPU, export XLA HLO

usage: scribe COMMAND [MODEL] [options]

commands:
  generate     generate text from a prompt (tokens streamed as they come)
  export-hlo   write the prefill and decode graphs as HLO text and HloModuleProto,
               with a manifest.json of their parameters and outputs
  inspect      print the config, the weights and the memory a run needs, per
               tensor-parallel rank
  shard        write a model pre-sharded for tensor parallelism (one file per rank)
  compile      write an artifact that starts at once: each rank's weights converted
               and laid out as the kernels read them, the graphs as HLO, a key
  train        train a model on plain text (fine-tune a folder, or a new model from
               a config), with checkpoints Hugging Face loads
  classify     label texts or text pairs with an encoder's classifier (BERT,
               RoBERTa, DistilBERT): each label with its probability
  embed        sentence embeddings from an encoder (mean pooling, or [CLS])
  tokenize     the ids a model's tokenizer makes of a text, or the text of ids

MODEL is a Hugging Face folder of a GPT-2, GPT-J, OPT, LLaMA or Mistral model
(config.json, whose model_type picks the family; model.safetensors or a sharded
index, or pytorch_model.bin or its sharded index, read without running its pickle;
for generate, a BPE tokenizer: tokenizer.json — GPT-2's byte-level, Llama 2's
or Mistral's SentencePiece-style, Llama 3's — or vocab.json + merges.txt), or, for classify, embed and export-hlo, of a BERT, RoBERTa
or DistilBERT encoder (WordPiece or byte-level BPE tokenizer). Without one, the demo model in the source tree is used: )" SCRIBE_DEFAULT_MODEL R"(

`scribe COMMAND --help` lists the options of a command.
)";

const char* usage_generate = R"(usage: scribe generate [MODEL] [--prompt TEXT]... [options]

Generates a continuation of each prompt (several --prompt flags run as one batch)
and prints prefill and decode tokens/s at the end. MODEL may be an artifact that
`scribe compile` wrote: it starts with nothing to convert or pack, at the --tp
and --dtype it was compiled for.

options:
  --prompt TEXT          the prompt (default: "In the beginning"); repeat for a batch
  --prompt-file FILE     the prompt from a file (any length; - reads standard input)
  --max-new-tokens N     tokens to generate per prompt (default 64)
  --temperature T        0 is greedy (default 0.8)
  --top-k K              sample from the K most likely tokens; 0: all (default 40)
  --top-p P              sample from the smallest set of probability P (default 1)
  --seed S               the sampler's seed (default 0)
  --greedy               the same as --temperature 0
  --no-stop              keep generating after the end-of-text token
  --dtype T              f32, f16 or bf16: the dtype weights are converted to and the
                         model runs in; q8: the matrices quantized as they load into
                         8-bit blocks of 32 with an f16 scale each (llama.cpp's Q8_0,
                         about 3.8x smaller than f32); q4: 4-bit blocks (Q4_0, about
                         7x smaller, less accurate); activations in f32 (default f32,
                         or the format `scribe shard --dtype q8|q4` wrote)
  --threads N            CPU threads (default: all)
  --buckets A,B,...      prompt lengths the prefill graphs are built for
  --tp N                 tensor-parallel degree: N ranks as threads of this process,
                         or, under `mpirun -np N`, as N processes (default 1, or
                         mpirun's process count)
  --collective-timeout S fail when a rank waits more than S seconds for the others at
                         one exchange, naming the ranks that did not arrive (a hung or
                         stopped rank; default 300)
  --memory-budget SIZE   refuse a run whose weights and KV cache need more than SIZE
                         per rank (bytes, or with K, M or G: 512M, 2G)
  --quiet                print only the generated text
  --mmap                 read the weights in place from the files' memory maps: a faster
                         start and memory shared with other processes, but decode reads
                         them about 8% slower than the copy in 2 MiB pages made by
                         default (converted or quantized weights are copies either way)
  --check-finite         when the logits are NaN or infinite, find the first layer that
                         made them (checks every value: slow; for debugging)

speculative decoding (one prompt):
  --draft DIR            a smaller model with the same tokenizer (any family) that
                         proposes tokens; the model checks them all in one step and
                         keeps those it agrees with. Greedy output is exactly the
                         model's own; sampled output has the model's distribution
  --speculate K          tokens the draft proposes per step (default 4, at most 64)
  --draft-dtype T        the draft's --dtype (default: the model's --dtype)
  The run ends with the draft's proposals, how many were accepted, and the
  speed-up over the model decoding alone (its decode step timed in the same run).

With --tp N the heads, the MLP and the vocabulary are split over the ranks; N
must divide the number of heads and the MLP's width (`scribe inspect` lists the
degrees that do). Each rank reads its part of the checkpoint (model.safetensors
or pytorch_model.bin, or their shards), or its own file of a folder written by
`scribe shard`.
)";

const char* usage_export = R"(usage: scribe export-hlo [MODEL] [--out DIR] [options]

Writes, for the model's config, one prefill module per bucket and one decode
module (and, with --speculate K, a verify module), each as DIR/<name>.hlo (text)
and DIR/<name>.pb (HloModuleProto), and DIR/manifest.json listing every module's
files, its parameters (weights first, in order, then ids, lengths or positions,
and the KV cache) and its outputs (logits, then the cache, each cache output
aliased to its parameter), with names, dtypes and shapes.

options:
  --out DIR              where to write (default: hlo/)
  --buckets A,B,...      prefill buckets (default 128, or the model's positions if fewer)
  --batch B              sequences per step (default 1, at most 1024)
  --capacity C           positions in the KV cache (default: the model's positions)
  --dtype T              f32, f16, bf16, q8 or q4: s8 (q4: u8, two 4-bit values a
                         byte) weight parameters with f16 block scales (<weight> and
                         <weight>.scale), dequantized in the module, f32 activations
                         (default f32)
  --all-logits           prefill returns logits for every position, not only the last
  --speculate K          also write verify_<K+1>, speculative decoding's verify step:
                         decode over K + 1 tokens at once (ids [batch, K + 1], positions
                         [batch] of the first; logits [batch, K + 1, vocab] of each),
                         the caches written at positions .. + K (1 <= K <= 64)
  --train                instead of prefill and decode: one training-step module per
                         bucket, train_<bucket>, whose inputs are the weights, ids
                         [batch, bucket] and lengths [batch] (rows right-padded) and
                         whose outputs are the causal-LM loss (f32, Hugging Face's:
                         each real token predicted from those before it) and the
                         gradient of every weight, named grad.<weight>
  --tp N                 tensor-parallel degree (default 1)
  --dp N                 with --train and an optimizer: the step of one of N
                         data-parallel replicas (see below; default 1)
  --bucket-size SIZE     with --dp: gradients all-reduced together (default 25M)
  --precision P          with --train: the step in f32, bf16, bf16-sr, bf16-master
                         or autocast, as scribe train --precision runs it (instead
                         of --dtype; bf16-sr's rounding bits from --seed S, default
                         0, and optimizer.step)
  --memory-budget SIZE   refuse shapes whose weights and KV cache need more than SIZE
                         per rank (bytes, or 512M, 2G; default: this machine's memory)

With --train and --optimizer, the module is a whole optimizer step instead:
outputs loss, grad_norm (the global gradient norm before clipping), every updated
weight and the updated optimizer state, each aliased to its parameter (feed them
back as the next step's inputs). The state parameters are optimizer.step (s32,
steps taken) and, per weight, optimizer.exp_avg.<w> and optimizer.exp_avg_sq.<w>
(AdamW) or optimizer.momentum_buffer.<w> (SGD with momentum), all starting at
zero; the learning-rate schedule is computed inside from optimizer.step. With
--accumulate K > 1 there are three modules per bucket: train_<b>_first (outputs
the loss and accumulated.<w>, the gradients of loss / K), train_<b>_middle (adds
its micro-batch's to them; absent for K = 2) and train_<b>_last (adds its own,
clips, updates). The arithmetic is torch.optim's (see docs/training.md); the
optimizer's flags are below.

With --train, an optimizer and --dp N, the step is that of one of N data-parallel
replicas (compile with num_replicas = N): each replica's ids and lengths are its
own --batch rows, and its gradients are averaged with the others' (all-reduced
over {0..N-1} in buckets of about --bucket-size bytes, default 25M) before the
update, so every replica takes the same step; the loss output is the replicas'
mean. With --tp T too, the step is one rank's of a data x tensor-parallel mesh
of N x T replicas (compile with num_replicas = N x T): replica r is rank r % T of
data-parallel replica r / T, its layers' collectives combine each data-parallel
replica's T ranks ({0..T-1}, {T..2T-1}, ...: the manifest's replica_groups) and
its gradients' all-reduce the ranks holding the same shards ({0, T, 2T, ...},
...: dp_groups).

The folder's weights are checked as generate checks them (every tensor present,
of the shape config.json implies), and so is the memory a rank needs.

With --tp N, each module is the one every rank runs (SPMD, as XLA replicates a
module over N replicas): its weight parameters are one rank's shards, its
all-reduce and all-gather combine the replica group {0..N-1}, and a rank picks
its rows of the sharded vocabulary with replica-id. The manifest records the
degree, the ranks and the replica groups, and, for each weight parameter, the
dimension split over the ranks ("split"; absent when replicated). Compile with
num_replicas = N; `scribe shard` writes the per-rank weights. A training step's
gradients follow the weights: each rank's is the gradient of its shard, and a
replicated weight's is the whole model's on every rank.
)";

const char* usage_inspect = R"(usage: scribe inspect [MODEL] [options]

Prints the config, every weight (name, dtype, shape, bytes) and the bytes of the
weights and of the KV cache for a batch and cache length; for an artifact of
`scribe compile`, also what it was compiled for.

options:
  --batch B              sequences (default 1, at most 1024)
  --capacity C           positions in the KV cache (default: the model's positions)
  --dtype T              the dtype to account weights and cache in: f32, f16, bf16 or
                         q8 or q4 (block matrices, f32 cache) (default: as stored)
  --tp N                 also print what each of N tensor-parallel ranks holds
  --memory-budget SIZE   say whether each rank fits in SIZE (bytes, or 512M, 2G)
)";

const char* usage_shard = R"(usage: scribe shard [MODEL] --tp N --out DIR [--dtype T]

Writes MODEL pre-sharded for N tensor-parallel ranks: DIR/model.tp<N>-rank<R>.safetensors
for each rank R, holding that rank's part of every weight (under its Hugging Face
name, in the dims the model reads it as, e.g. attn.c_attn.weight as
[hidden, qkv, heads / N, head_dim]; the vocabulary padded with zero rows to a
multiple of N), with __metadata__ scribe.tp_degree and scribe.rank, plus
config.json and the tokenizer files. `scribe generate DIR --tp N` then reads each
rank's file instead of cutting model.safetensors, with nothing to convert. N may
be 1: the whole model, converted once (to bf16, or quantized to q8 or q4) and saved.

options:
  --tp N                 the tensor-parallel degree (required)
  --out DIR              where to write (required)
  --dtype T              f32, f16 or bf16: the dtype to store (default f32); q8 or q4:
                         each matrix quantized as `generate --dtype q8` (q4) would
                         (I8 blocks of 32, or U8 blocks of 16 bytes for q4, under the
                         weight's name, F16 scales under <weight>.scale, __metadata__
                         scribe.weights "q8" or "q4"), the rest f32; the folder then
                         runs in that format
)";

// The MPI world when this process was started by mpirun (and the program was
// built with MPI); otherwise none, and --tp N runs N ranks as threads.
struct mpi_world {
#ifdef SCRIBE_WITH_MPI
    std::unique_ptr<parallel::mpi_session> mpi;
#endif
    mpi_world([[maybe_unused]] int* argc, [[maybe_unused]] char*** argv) {
#ifdef SCRIBE_WITH_MPI
        if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE"))
            mpi = std::make_unique<parallel::mpi_session>(argc, argv);
#else
        if (std::getenv("OMPI_COMM_WORLD_SIZE") && std::atoi(std::getenv("OMPI_COMM_WORLD_SIZE")) > 1)
            throw error("started by mpirun, but this scribe was built without MPI (install libopenmpi-dev and rebuild)");
#endif
    }
    cpu::communicator* comm() {
#ifdef SCRIBE_WITH_MPI
        if (mpi && mpi->size() > 1) return &mpi->world();
#endif
        return nullptr;
    }
};

// What a command runs on: the MPI world's ranks, or none (ranks as threads).
struct launcher {
    explicit launcher(cpu::communicator* c) : comm_(c) {}
    cpu::communicator* comm() { return comm_; }
    int rank() { return comm_ ? comm_->rank() : 0; }

private:
    cpu::communicator* comm_;
};

// Bytes of a UTF-8 string that end on a whole character.
std::size_t whole_chars(const std::string& s) {
    std::size_t n = s.size(), i = n;
    while (i > 0 && i > n - 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
    if (i == 0) return n;
    const auto lead = static_cast<unsigned char>(s[i - 1]);
    const std::size_t len = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 1;
    return (i - 1) + len <= n ? n : i - 1;
}

// A draft model for speculative decoding, of whichever family its folder
// holds, and the one sequence it steps.
struct draft_model {
    virtual ~draft_model() = default;
    virtual runtime::stepper& sequence() = 0;
    virtual std::size_t weight_bytes() const = 0;
    virtual std::string summary() const = 0;
};

template <class family>
struct draft_of final : draft_model {
    runtime::decoder<family> lm;
    typename runtime::decoder<family>::sequence seq{lm};
    draft_of(const fs::path& dir, const runtime::load_options& lo) : lm(dir, lo) {}
    runtime::stepper& sequence() override { return seq; }
    std::size_t weight_bytes() const override { return lm.weight_bytes(); }
    std::string summary() const override { return family::summary(lm.model_config()); }
};

std::unique_ptr<draft_model> load_draft(const fs::path& dir, const runtime::load_options& lo) {
    return models::with_family(dir, [&]<class family>() -> std::unique_ptr<draft_model> { return std::make_unique<draft_of<family>>(dir, lo); });
}

template <class family>
int generate(const args& a, launcher& run) {
    auto* comm = run.comm();
    // Under mpirun only rank 0 speaks; every rank computes the same tokens.
    if (run.rank() != 0 && !std::freopen("/dev/null", "w", stdout)) throw error("cannot silence rank " + std::to_string(run.rank()));
    const bool quiet = a.flag("quiet") || run.rank() != 0;
    // Every flag is checked before anything is loaded.
    runtime::generate_options go;
    go.max_new_tokens = a.integer("max-new-tokens", 64, 1, max_count);
    go.sample.temperature = a.flag("greedy") ? 0.0 : a.number("temperature", 0.8, 0.0, 1e6);
    go.sample.top_k = a.integer("top-k", 40, 0, max_count);
    go.sample.top_p = a.number("top-p", 1.0, 0.0, 1.0);
    if (go.sample.top_p <= 0) throw error("--top-p must be above 0 (and at most 1), not " + io::printable(*a.value("top-p")));
    go.sample.seed = static_cast<std::uint64_t>(a.integer("seed", 0, 0, std::numeric_limits<std::int64_t>::max()));
    go.stop_at_eos = !a.flag("no-stop");
    go.sample.check();
    runtime::load_options lo;
    lo.threads = static_cast<unsigned>(a.integer("threads", 0, 0, max_threads));
    if (auto b = a.value("buckets")) lo.buckets = parse_list(*b, "--buckets");
    lo.check_finite = a.flag("check-finite");
    lo.keep_mapped = a.flag("mmap");
    if (a.value("prompt-file") && !a.prompts.empty()) throw error("give either --prompt or --prompt-file, not both");
    auto prompts_text = a.prompts.empty() ? std::vector<std::string>{"In the beginning"} : a.prompts;
    if (auto f = a.value("prompt-file")) prompts_text = {shared_text(comm, [&] { return read_file_arg(*f, "--prompt-file", "the prompt file"); })};
    const auto draft_dir = a.value("draft").transform([](const std::string& d) { return fs::path(d); });
    if (!draft_dir && (a.value("speculate") || a.value("draft-dtype")))
        throw error(std::string(a.value("speculate") ? "--speculate" : "--draft-dtype") +
                    " goes with --draft DIR (the smaller model that proposes tokens)");
    const runtime::speculative_options speculation{.draft_tokens = a.integer("speculate", 4, 1, 64)};
    if (draft_dir) {
        if (prompts_text.size() > 1)
            throw error("speculative decoding (--draft) runs one prompt at a time; give one --prompt, not " + std::to_string(prompts_text.size()));
        check_model_folder(*draft_dir, "--draft");
        if (models::is_encoder(*draft_dir))
            throw error("--draft " + draft_dir->string() + " is an encoder, not a decoder: a draft is a smaller decoder with the model's tokenizer");
    }

    const auto c = family::config::load(a.model / "config.json");
    const auto tok = io::tokenizer::from_folder(a.model);
    // A tokenizer with more ids than the model could make prompts the model cannot
    // read; one with fewer (a vocabulary padded to a round size) cannot spell the
    // padding ids, so they are never chosen.
    if (tok.vocab_size() > c.vocab_size)
        throw error((a.model / "config.json").string() + ": vocab_size is " + std::to_string(c.vocab_size) + " but the tokenizer has " +
                    std::to_string(tok.vocab_size()) + " tokens; the tokenizer and the model do not belong together");
    go.vocab_limit = tok.vocab_size();
    if (!quiet && tok.vocab_size() < c.vocab_size)
        std::fprintf(stderr, "note: the model has %lld token ids, its tokenizer %d; the %lld without text are never generated\n",
                     static_cast<long long>(c.vocab_size), tok.vocab_size(), static_cast<long long>(c.vocab_size - tok.vocab_size()));
    // A compiled artifact runs at the degree it was compiled for (read and checked
    // here, before anything is loaded).
    const auto compiled = runtime::is_artifact(a.model) ? std::optional(runtime::artifact::read(a.model)) : std::nullopt;
    lo.tp = a.integer("tp", comm ? comm->size() : compiled ? compiled->options.tp : 1, 1, max_tp);
    if (comm && lo.tp != comm->size())
        throw error("--tp " + std::to_string(lo.tp) + " under mpirun -np " + std::to_string(comm->size()) +
                    ": give --tp " + std::to_string(comm->size()) + " (one rank per process)");
    lo.comm = comm;
    const auto md = parse_model_dtype(a.value("dtype").value_or(default_model_dtype(a.model, lo.tp)));
    lo.type = md.type;
    lo.weights = md.weights;
    if (a.value("collective-timeout"))
        lo.collective_timeout = std::chrono::milliseconds(std::llround(1000 * a.number("collective-timeout", 0, 0.001, 86400)));
    if (auto m = a.value("memory-budget")) lo.memory_budget = parse_size(*m);
    const auto load_start = std::chrono::steady_clock::now();
    int shown = -1;  // the progress bar redraws when the percentage changes (on a terminal)
    const bool tty = isatty(fileno(stderr));
    if (!quiet)
        lo.progress = [&](std::size_t done, std::size_t total) {
            const int pct = total ? static_cast<int>(100 * done / total) : 100;
            if (pct == shown || (!tty && done != total)) return;
            shown = pct;
            const int width = 30, filled = width * pct / 100;
            std::fprintf(stderr, "\rloading weights [%s%s] %3d%%", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                         std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), pct);
            if (done == total) std::fprintf(stderr, "\n");
        };
    runtime::decoder<family> lm(a.model, lo);
    if (!quiet)
        std::fprintf(stderr, "%s: %s of weights in %s%s, loaded in %.2f s\n", a.model.string().c_str(), mib(lm.weight_bytes()).c_str(),
                     lm.weight_format() == models::weight_format::q8   ? "q8 (matrices in 8-bit blocks, the rest f32)"
                     : lm.weight_format() == models::weight_format::q4 ? "q4 (matrices in 4-bit blocks, the rest f32)"
                                                                       : std::string(name(lm.type())).c_str(),
                     lm.compiled() ? (", compiled artifact for --tp " + std::to_string(lm.tp()) + (lm.tp() == 1 ? "" : comm ? " (MPI)" : " (threads)")).c_str()
                     : lm.tp() == 1 ? (lm.presharded() ? ", pre-sharded for one rank" : "")
                     : (", tensor parallel over " + std::to_string(lm.tp()) + (comm ? " processes (MPI)" : " threads") +
                        (lm.presharded() ? ", pre-sharded" : "") + (comm ? ": rank 0's part" : ": all ranks"))
                           .c_str(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count());

    // The draft: its tokenizer (where its folder has one) must be the model's, and
    // it runs on the same ranks.
    std::unique_ptr<draft_model> draft;
    if (draft_dir) {
        if (fs::exists(*draft_dir / "tokenizer.json") || fs::exists(*draft_dir / "vocab.json")) {
            const auto dt = io::tokenizer::from_folder(*draft_dir);
            for (const auto& p : prompts_text)
                if (dt.vocab_size() != tok.vocab_size() || dt.encode_with_specials(p) != tok.encode_with_specials(p))
                    throw error("--draft " + draft_dir->string() + ": its tokenizer (" + std::to_string(dt.vocab_size()) +
                                " tokens) is not the model's (" + std::to_string(tok.vocab_size()) +
                                " tokens): the draft must share the model's tokenizer");
        }
        auto dl = lo;
        const auto dd = parse_model_dtype(a.value("draft-dtype").value_or(a.value("dtype").value_or(default_model_dtype(*draft_dir, lo.tp))));
        dl.type = dd.type;
        dl.weights = dd.weights;
        dl.progress = {};
        const auto t0 = std::chrono::steady_clock::now();
        draft = load_draft(*draft_dir, dl);
        if (!quiet)
            std::fprintf(stderr, "draft %s: %s; %s of weights in %s, loaded in %.2f s\n", draft_dir->string().c_str(), draft->summary().c_str(),
                         mib(draft->weight_bytes()).c_str(), dd.label().c_str(),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }

    std::vector<std::vector<std::int32_t>> prompts;
    for (const auto& p : prompts_text) {
        // With the special tokens the tokenizer puts around a text (Llama's BOS), as
        // Hugging Face's tokenizer(prompt) gives them to generate().
        prompts.push_back(tok.encode_with_specials(p));
        if (prompts.back().size() == tok.special_prefix().size() + tok.special_suffix().size())
            throw error("the prompt \"" + io::printable(p) + "\" encodes to no tokens; give a non-empty prompt");
    }
    // Generation ends at the model's end tokens (generation_config.json's, else
    // config.json's: one id or a list) and at the tokenizer's eos_token.
    go.eos = tok.end_tokens(lm.eos_ids());
    auto is_eos = [&](std::int32_t t) { return std::find(go.eos.begin(), go.eos.end(), t) != go.eos.end(); };
    auto continuation = [&](const std::vector<std::int32_t>& prompt, const std::vector<std::int32_t>& made) {
        return tok.continuation(prompt, made);
    };

    lm.check_prompts(prompts, go.max_new_tokens);  // before the prompt is echoed
    // One prompt: stream its text as tokens come, whole UTF-8 characters at a time.
    const bool stream = prompts.size() == 1;
    std::vector<std::int32_t> so_far;
    std::size_t printed = 0;
    if (stream) {
        std::printf("%s", prompts_text[0].c_str());
        std::fflush(stdout);
        go.on_token = [&](std::size_t, std::int32_t t) {
            if (is_eos(t)) return true;
            so_far.push_back(t);
            const auto text = continuation(prompts[0], so_far);
            const auto upto = whole_chars(text);
            if (upto > printed) {
                std::fwrite(text.data() + printed, 1, upto - printed, stdout);
                std::fflush(stdout);
                printed = upto;
            }
            return true;
        };
    }
    runtime::generation out;
    std::optional<runtime::speculative_generation> spec;
    double alone = 0;  // seconds of one decode step of the model without a draft
    if (draft) {
        typename runtime::decoder<family>::sequence target(lm);
        spec = runtime::speculate(target, draft->sequence(), prompts[0], go, speculation, go.eos);
        out = *spec;
        // Every rank times the steps (they are collective under MPI); rank 0 reports.
        if (!a.flag("quiet") && spec->rounds > 0) alone = runtime::plain_step_seconds(target, 8);
    } else {
        out = lm.generate(prompts, go);
    }
    if (stream) {
        const auto text = continuation(prompts[0], so_far);
        if (text.size() > printed) std::fwrite(text.data() + printed, 1, text.size() - printed, stdout);
        std::printf("\n");
        std::fflush(stdout);
    } else {
        for (std::size_t b = 0; b < prompts.size(); ++b) {
            auto t = out.tokens[b];
            std::erase_if(t, is_eos);
            std::printf("[%zu] %s%s\n", b, prompts_text[b].c_str(), continuation(prompts[b], t).c_str());
        }
    }
    if (!quiet) {
        std::int64_t made = 0;
        for (const auto& t : out.tokens) made += static_cast<std::int64_t>(t.size());
        const auto decoded = made - static_cast<std::int64_t>(prompts.size());  // the first token of each comes from prefill
        std::fprintf(stderr, "prefill: %lld prompt tokens (bucket %lld) in %.1f ms, %.1f tokens/s\n",
                     static_cast<long long>(out.prompt_tokens), static_cast<long long>(out.bucket), out.prefill_seconds * 1e3,
                     static_cast<double>(out.prompt_tokens) / out.prefill_seconds);
        if (out.decode_steps > 0)
            std::fprintf(stderr, "decode:  %lld tokens in %lld steps in %.1f ms, %.1f tokens/s (%.2f ms per step, batch %zu; %.3f ms of it outside the graph)\n",
                         static_cast<long long>(decoded), static_cast<long long>(out.decode_steps), out.decode_seconds * 1e3,
                         static_cast<double>(decoded) / out.decode_seconds, out.decode_seconds * 1e3 / static_cast<double>(out.decode_steps),
                         prompts.size(), (out.decode_seconds - out.decode_graph_seconds) * 1e3 / static_cast<double>(out.decode_steps));
        if (spec && spec->rounds > 0) {
            std::fprintf(stderr, "speculative: K %lld; the draft proposed %lld tokens, %lld accepted (%.1f%%); %.2f tokens per verify step; "
                                 "draft %.1f ms, model %.1f ms\n",
                         static_cast<long long>(speculation.draft_tokens), static_cast<long long>(spec->drafted),
                         static_cast<long long>(spec->accepted), 100 * spec->acceptance(), spec->tokens_per_round(),
                         spec->draft_seconds * 1e3, spec->target_seconds * 1e3);
            const double per_token = out.decode_seconds / static_cast<double>(decoded);
            std::fprintf(stderr, "speed-up: %.2fx over the model decoding alone (%.2f ms a token speculating; %.2f ms a decode step alone, "
                                 "timed in this run)\n",
                         alone / per_token, per_token * 1e3, alone * 1e3);
        }
    }
    return 0;
}

int generate(int argc, char** argv, launcher& run) {
    const auto a = parse(argc, argv,
                         {"prompt", "prompt-file", "max-new-tokens", "temperature", "top-k", "top-p", "seed", "dtype", "threads",
                          "buckets", "tp", "collective-timeout", "memory-budget", "draft", "speculate", "draft-dtype"},
                         {"greedy", "no-stop", "quiet", "check-finite", "mmap", "help"});
    if (a.flag("help")) return std::printf("%s", usage_generate), 0;
    check_model_folder(a.model);
    return models::with_family(a.model, [&]<class family>() { return generate<family>(a, run); });
}

template <class family> int export_hlo(const args& a);
template <class family> int inspect(const args& a);
template <class family> int shard(const args& a);

int export_hlo(int argc, char** argv) {
    auto values = optimizer_values;
    values.insert(values.end(), {"out", "buckets", "batch", "capacity", "dtype", "tp", "memory-budget", "dp", "bucket-size", "precision", "seed",
                                 "speculate"});
    const auto a = parse(argc, argv, values, {"all-logits", "train", "nesterov", "help"});
    if (a.flag("help")) return std::printf("%s%s", usage_export, usage_optimizer), 0;
    check_model_folder(a.model);
    if (models::is_encoder(a.model)) return export_encoder_hlo(a);
    return export_decoder_hlo(a);
}

int inspect(int argc, char** argv) {
    const auto a = parse(argc, argv, {"batch", "capacity", "dtype", "tp", "memory-budget"}, {"help"});
    if (a.flag("help")) return std::printf("%s", usage_inspect), 0;
    check_model_folder(a.model);
    return models::with_family(a.model, [&]<class family>() { return inspect<family>(a); });
}

int shard(int argc, char** argv) {
    const auto a = parse(argc, argv, {"tp", "out", "dtype"}, {"help"});
    if (a.flag("help")) return std::printf("%s", usage_shard), 0;
    check_model_folder(a.model);
    return models::with_family(a.model, [&]<class family>() { return shard<family>(a); });
}

// What export-hlo and inspect run for, checked as generate checks it: the
// degree, the batch and cache length (then the weights in the folder, by
// runtime::weight_files, and the memory plan, by plan_run).
struct shape_of_run {
    std::int64_t tp = 1, batch = 1, capacity = 1;
    dtype type = dtype::f32;
    models::weight_format weights = models::weight_format::plain;
    bool type_given = false;
    std::vector<int> ranks;  // 0 .. tp-1
};

template <class family>
shape_of_run parse_run(const args& a, const typename family::config& c) {
    shape_of_run s;
    s.tp = a.integer("tp", 1, 1, max_tp);
    family::check_tp(c, s.tp);
    s.batch = a.integer("batch", 1, 1, runtime::max_batch);
    s.capacity = a.integer("capacity", c.n_positions, 1, c.n_positions);
    s.type_given = a.value("dtype").has_value();
    const auto md = parse_model_dtype(a.value("dtype").value_or(default_model_dtype(a.model, s.tp)));
    s.type = md.type;
    s.weights = md.weights;
    s.ranks.resize(static_cast<std::size_t>(s.tp));
    std::iota(s.ranks.begin(), s.ranks.end(), 0);
    return s;
}

// The per-rank memory plan at degree `tp` (in dtype t), its arithmetic checked;
// `enforce`: refused as generate refuses it (over --memory-budget, or over this
// machine's memory without one).
template <class family>
parallel::memory_plan plan_run(const args& a, const typename family::config& c, const shape_of_run& s, std::int64_t tp, dtype t,
                               bool enforce) {
    const auto budget = a.value("memory-budget") ? parse_size(*a.value("memory-budget")) : 0;
    try {
        const auto p = parallel::plan(family::weights(c, tp), family::cache_shapes(c, s.batch, s.capacity, tp), t, tp, s.weights);
        if (enforce) runtime::check_memory(p, s.batch, s.capacity, t, 1, budget);
        return p;
    } catch (const error& e) {
        throw error(std::string(e.what()).substr(std::string_view("[scribe] ").size()) + " (--batch " + std::to_string(s.batch) +
                    ", --capacity " + std::to_string(s.capacity) + ", --tp " + std::to_string(tp) + ")");
    }
}

template <class family>
int export_hlo(const args& a) {
    const auto c = family::config::load(a.model / "config.json");
    const auto s = parse_run<family>(a, c);
    const runtime::weight_files<family> files(a.model, c, s.tp, s.ranks);
    (void)plan_run<family>(a, c, s, s.tp, s.type, true);
    const auto tp = s.tp, batch = s.batch, capacity = s.capacity;
    const auto type = s.type;
    auto buckets = a.value("buckets") ? parse_list(*a.value("buckets"), "--buckets")
                                      : std::vector<std::int64_t>{std::min<std::int64_t>(128, c.n_positions)};
    for (auto b : buckets)
        if (b > capacity)
            throw error("bucket " + std::to_string(b) + " is longer than the KV cache's " + std::to_string(capacity) +
                        " positions (--capacity)");
    const fs::path out = a.value("out").value_or("hlo");
    make_out_folder(out);
    const bool q8 = s.weights != models::weight_format::plain;  // q8 or q4
    nlohmann::json manifest = {{"model", a.model.string()}, {"dtype", q8 ? std::string(name(s.weights)) : std::string(name(type))}, {"batch", batch},
                               {"capacity", capacity}, {"tp", tp}, {"modules", nlohmann::json::array()}};
    std::map<std::string, std::string> split;  // weight -> the dim split over the ranks
    for (const auto& w : family::weights(c, tp))
        if (!w.split.empty()) split[w.name] = w.split;
    const auto dp = a.integer("dp", 1, 1, max_tp);
    if (dp > 1 && !(a.flag("train") && optimizer_given(a)))
        throw error("--dp " + std::to_string(dp) + " makes the step of a data-parallel replica: it needs --train and an optimizer (--optimizer, --lr, ...)");
    if (a.value("bucket-size") && dp == 1) throw error("--bucket-size goes with --dp (the gradients' all-reduce)");
    if ((a.value("precision") || a.value("seed")) && !a.flag("train"))
        throw error(std::string(a.value("precision") ? "--precision" : "--seed") + " is for a training step: add --train");
    if (a.value("precision") && a.value("dtype"))
        throw error("give --precision (the training step's arithmetic) or --dtype, not both");
    const bool mixed = a.value("precision").has_value();  // --precision: the step's arithmetic instead of --dtype's
    const auto precision = mixed ? train::parse_precision(*a.value("precision")) : train::precision::f32;
    if (mixed) manifest["precision"] = std::string(train::name(precision));
    const auto replicas = tp * dp;
    // A data x tensor-parallel mesh: the layers' groups (one of all ranks without
    // tensor parallelism, for the data-parallel step's loss and gradients), and the gradients'.
    const parallel::mesh mesh{.degree = tp, .replicas = dp};
    const auto groups = tp > 1 ? mesh.groups().groups : parallel::mesh{.degree = replicas}.groups().groups;
    const auto dp_groups = tp > 1 && dp > 1 ? mesh.across().groups : std::vector<std::vector<std::int64_t>>{};
    manifest["dp"] = dp;
    auto add = [&](nlohmann::json m) {
        // One module for every rank: the ranks that run it and the groups its collectives combine.
        m["num_replicas"] = replicas;
        m["ranks"] = parallel::mesh{.degree = replicas}.groups().groups.front();
        m["replica_groups"] = replicas > 1 ? nlohmann::json(groups) : nlohmann::json::array();
        if (!dp_groups.empty()) m["dp_groups"] = dp_groups;
        if (tp > 1)
            for (auto& p : m["parameters"]) {
                std::string n = p["name"];
                const auto base = n.substr(0, n.size() - std::min(n.size(), q8::scale_suffix.size()));
                if (n.ends_with(q8::scale_suffix) && split.count(base)) n = base;  // a q8/q4 weight's scales
                if (!split.count(n)) continue;
                // A q8/q4 weight split along a contracted dim is split along its blocks.
                bool has = false;
                for (const auto& d : p["shape"]) has = has || d["name"] == split[n];
                p["split"] = has ? split[n] : std::string(q8::storage(s.weights).blocks_dim);
            }
        manifest["modules"].push_back(m);
    };
    auto build = [&](graph& g, const models::graph_shape& s) {
        if (type == dtype::f16) family::template build<f16>(g, c, s);
        else if (type == dtype::bf16) family::template build<bf16>(g, c, s);
        else family::template build<f32>(g, c, s);
    };
    if (optimizer_given(a) && !a.flag("train"))
        throw error("the optimizer's flags (--optimizer, --lr, ...) make a training step: add --train");
    const std::int64_t speculate = a.value("speculate") ? a.integer("speculate", 4, 1, 64) : 0;  // 0: no verify module
    if (speculate && a.flag("train")) throw error("--speculate adds the verify module of decoding; it does not go with --train");
    if (speculate && speculate + 1 > capacity)
        throw error("--speculate " + std::to_string(speculate) + " checks " + std::to_string(speculate + 1) +
                    " tokens a step, more than the KV cache's " + std::to_string(capacity) + " positions (--capacity)");
    if (a.flag("train")) {
        if (q8)
            throw error("--train and --dtype " + std::string(name(s.weights)) +
                        " do not go together (block weights are for inference; train in f32, f16 or bf16)");
        if (a.flag("all-logits")) throw error("--train and --all-logits do not go together (a training step returns the loss and gradients)");
        const bool update = optimizer_given(a);
        auto o = update ? parse_update(a) : train::update_options{};
        o.decays = train::decays_matrices(family::weights(c, tp));
        o.dp.replicas = dp;
        o.dp.groups = dp_groups;
        if (mixed) {
            train::apply(precision, o, static_cast<std::uint64_t>(a.integer("seed", 0, 0, std::int64_t{1} << 62)));
            manifest["dtype"] = std::string(name(train::weight_type(precision)));
        }
        if (a.value("bucket-size")) {
            const auto bytes = parse_size(*a.value("bucket-size"), "--bucket-size");
            if (bytes < 1 || bytes > (std::size_t{1} << 40)) throw error("--bucket-size " + *a.value("bucket-size") + " must be 1 byte to 1T");
            o.dp.bucket_bytes = static_cast<std::int64_t>(bytes);
        }
        for (auto b : buckets) {
            if (b < 2) throw error("--train needs buckets of at least 2 positions (a token predicts the next), got " + std::to_string(b));
            for (const auto pass : train::passes(update ? o.accumulate : 1)) {
                const std::string suffix = pass == train::pass::whole ? "" : std::string("_") + train::name(pass);
                graph g("train_" + std::to_string(b) + suffix);
                const train::batch_shape bs{.batch = batch, .seq = b, .tp = tp, .dp = tp > 1 ? dp : 1};
                const auto loss = mixed                 ? train::causal_lm_loss_in<family>(precision, g, c, bs)
                                  : type == dtype::f16  ? train::causal_lm_loss<family, f16>(g, c, bs)
                                  : type == dtype::bf16 ? train::causal_lm_loss<family, bf16>(g, c, bs)
                                                        : train::causal_lm_loss<family, f32>(g, c, bs);
                std::vector<node_id> wrt, varying;
                std::vector<std::string> names{"loss"};
                for (const auto& w : family::weights(c, tp)) {
                    wrt.push_back(*g.find_parameter(w.name));
                    if (!w.split.empty() && tp > 1) varying.push_back(wrt.back());
                    names.push_back("grad." + w.name);
                }
                const spmd parallel{.varying = varying, .replica_groups = {}};
                if (update) {
                    names = train::append_update(g, loss.id(), wrt, o, pass, parallel).outputs;
                } else {
                    auto outs = gradients(g, loss.id(), wrt, parallel);
                    outs.insert(outs.begin(), loss.id());
                    g.set_outputs(outs);
                }
                auto m = describe(g, hlo::write(g, out, g.name()), names);
                m["kind"] = update ? std::string("train_") + train::name(pass) : std::string("train");
                m["bucket"] = b;
                add(m);
                std::printf("wrote %s\n", (out / (g.name() + ".hlo")).string().c_str());
            }
        }
        if (update) {
            nlohmann::json opt = {{"lr", o.lr.lr}, {"schedule", train::schedule::name(o.lr.kind)}, {"warmup", o.lr.warmup},
                                  {"steps", o.lr.total}, {"clip", o.clip}, {"accumulate", o.accumulate}};
            if (const auto* w = std::get_if<train::adamw>(&o.method))
                opt.update({{"optimizer", "adamw"}, {"beta1", w->beta1}, {"beta2", w->beta2}, {"eps", w->eps}, {"weight_decay", w->weight_decay}});
            else if (const auto* s = std::get_if<train::sgd>(&o.method))
                opt.update({{"optimizer", "sgd"}, {"momentum", s->momentum}, {"dampening", s->dampening}, {"nesterov", s->nesterov},
                            {"weight_decay", s->weight_decay}});
            std::vector<std::string> decayed;
            for (const auto& w : family::weights(c, tp))
                if (o.decays(w.name)) decayed.push_back(w.name);
            opt["decayed"] = decayed;
            manifest["optimizer"] = opt;
        }
        std::ofstream(out / "manifest.json") << manifest.dump(2) << "\n";
        std::printf("wrote %s\n", (out / "manifest.json").string().c_str());
        return 0;
    }
    for (auto b : buckets) {
        graph g("prefill_" + std::to_string(b));
        build(g, {.batch = batch, .seq = b, .capacity = capacity, .decode = false, .last_only = !a.flag("all-logits"), .tp = tp,
                  .weights = s.weights});
        auto m = describe(g, hlo::write(g, out, g.name()));
        m["kind"] = "prefill";
        m["bucket"] = b;
        add(m);
        std::printf("wrote %s\n", (out / (g.name() + ".hlo")).string().c_str());
    }
    graph g("decode");
    build(g, {.batch = batch, .seq = 1, .capacity = capacity, .decode = true, .last_only = true, .tp = tp, .weights = s.weights});
    auto m = describe(g, hlo::write(g, out, g.name()));
    m["kind"] = "decode";
    add(m);
    std::printf("wrote %s\n", (out / "decode.hlo").string().c_str());
    if (speculate) {  // speculative decoding's verify step: decode over K + 1 tokens
        const auto n = speculate + 1;
        graph v("verify_" + std::to_string(n));
        build(v, {.batch = batch, .seq = n, .capacity = capacity, .decode = true, .tp = tp, .weights = s.weights});
        auto vm = describe(v, hlo::write(v, out, v.name()));
        vm["kind"] = "verify";
        vm["tokens"] = n;
        add(vm);
        std::printf("wrote %s\n", (out / (v.name() + ".hlo")).string().c_str());
    }
    std::ofstream(out / "manifest.json") << manifest.dump(2) << "\n";
    std::printf("wrote %s\n", (out / "manifest.json").string().c_str());
    return 0;
}

template <class family>
int inspect(const args& a) {
    const auto c = family::config::load(a.model / "config.json");
    const auto s = parse_run<family>(a, c);
    const runtime::weight_files<family> files(a.model, c, s.tp, {0});
    std::printf("model %s: %s\n", a.model.string().c_str(), family::summary(c).c_str());
    if (runtime::is_artifact(a.model)) {  // what it was compiled for (refused here too if it does not fit this CPU)
        const auto art = runtime::artifact::read(a.model);
        std::printf("compiled artifact: --tp %lld --dtype %s, buckets %s, batch %lld; kernels: %s; key %s; compiled from %s\n",
                    static_cast<long long>(art.options.tp), art.options.dtype_name().c_str(), list_text(art.options.buckets).c_str(),
                    static_cast<long long>(art.options.batch), art.machine.c_str(), art.key.c_str(), io::printable(art.source, 512).c_str());
    }
    const auto cache_t = s.type_given ? s.type : dtype::f32;  // weights: as stored unless --dtype
    const auto whole = plan_run<family>(a, c, s, 1, cache_t, false);
    std::size_t total = 0;
    std::int64_t params = 0;
    std::printf("%-34s %-6s %-22s %12s\n", "weight", "dtype", "shape", "bytes");
    for (std::size_t i = 0; i < files.specs().size(); ++i) {
        const auto& w = files.specs()[i];
        const auto t = s.type_given ? s.type : files.at(0, i).file->entry(files.at(0, i).name).type;
        const auto elements = checked::product(w.stored, w.name);
        const bool q8 = q8::plan(w.dims, w.in, s.weights).has_value();  // 34 (q4: 18) bytes per 32
        const auto bytes = q8 ? static_cast<std::size_t>(elements / 32 * q8::block_bytes(s.weights)) : static_cast<std::size_t>(elements) * info(t).bytes;
        std::printf("%-34s %-6s %-22s %12zu\n", w.name.c_str(), q8 ? std::string(name(s.weights)).c_str() : std::string(name(t)).c_str(),
                    io::shape_text(w.stored).c_str(), bytes);
        total += bytes;
        params += elements;
    }
    std::printf("parameters: %lld; weights: %zu bytes (%s)\n", static_cast<long long>(params), total, mib(total).c_str());
    std::printf("KV cache (%s, batch %lld, %lld positions): %zu bytes (%s)\n", std::string(name(cache_t)).c_str(),
                static_cast<long long>(s.batch), static_cast<long long>(s.capacity), whole.kv_cache, mib(whole.kv_cache).c_str());

    // Tensor parallelism: the degrees the model divides by, and what each rank holds.
    std::vector<std::int64_t> valid;
    for (std::int64_t d = 1; d <= max_tp; ++d) {
        try {
            family::check_tp(c, d);
            valid.push_back(d);
        } catch (const error&) {
        }
    }
    std::printf("tensor-parallel degrees: %s (%s; the vocabulary is padded)\n", parallel::list(valid).c_str(),
                family::tp_rule(c).c_str());
    std::vector<std::int64_t> degrees = valid;
    if (a.value("tp")) degrees = {s.tp};
    const std::size_t budget = a.value("memory-budget") ? parse_size(*a.value("memory-budget")) : 0;
    std::printf("per rank (%s, batch %lld, %lld positions):\n", std::string(name(cache_t)).c_str(), static_cast<long long>(s.batch),
                static_cast<long long>(s.capacity));
    std::printf("  %4s %14s %14s %14s %12s%s\n", "tp", "weights", "KV cache", "total bytes", "", budget ? "  budget" : "");
    for (auto d : degrees) {
        const auto p = plan_run<family>(a, c, s, d, cache_t, false);
        std::printf("  %4lld %14zu %14zu %14zu %12s%s\n", static_cast<long long>(d), p.weights, p.kv_cache, p.total(),
                    mib(p.total()).c_str(), !budget ? "" : p.total() <= budget ? "  fits" : "  exceeds");
    }
    return 0;
}

// Writes the model pre-sharded for --tp ranks (see usage_shard).
template <class family>
int shard(const args& a) {
    if (!a.value("tp") || !a.value("out")) throw error("scribe shard needs --tp N and --out DIR (see scribe shard --help)");
    const auto tp = a.integer("tp", 1, 1, max_tp);
    const fs::path out = *a.value("out");
    std::error_code ec;
    if (fs::exists(out, ec) && fs::equivalent(out, a.model, ec)) throw error("--out must be another folder than the model's");
    make_out_folder(out);
    const auto md = parse_model_dtype(a.value("dtype").value_or("f32"));
    runtime::decoder<family> lm(a.model, {.type = md.type, .weights = md.weights, .threads = 1, .tp = tp});
    lm.save_sharded(out);
    for (const auto& f : fs::directory_iterator(a.model)) {
        const auto n = f.path().filename().string();
        const bool weights = io::is_checkpoint_file(n) || n == "golden.json";
        if (f.is_regular_file() && !weights) fs::copy_file(f.path(), out / n, fs::copy_options::overwrite_existing);
    }
    for (std::int64_t r = 0; r < tp; ++r) std::printf("wrote %s\n", runtime::rank_file(out, tp, r).string().c_str());
    return 0;
}

}  // namespace

int scribe::cli::export_decoder_hlo(const args& a) {
    return models::with_family(a.model, [&]<class family>() { return export_hlo<family>(a); });
}

int scribe::cli::command(int argc, char** argv, cpu::communicator* comm) {
    launcher run(comm);
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
        std::printf("%s", usage_main);
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    if (cmd == "generate") return generate(argc, argv, run);
    if (cmd == "export-hlo") return export_hlo(argc, argv);
    if (cmd == "inspect") return inspect(argc, argv);
    if (cmd == "shard") return shard(argc, argv);
    if (cmd == "compile") return compile_command(argc, argv);
    if (cmd == "train") return train_command(argc, argv, comm);
    if (cmd == "classify") return classify_command(argc, argv, comm);
    if (cmd == "embed") return embed_command(argc, argv, comm);
    if (cmd == "tokenize") return tokenize_command(argc, argv);
    std::fprintf(stderr, "scribe: unknown command \"%s\"\n\n%s", cmd.c_str(), usage_main);
    return 2;
}

int scribe::cli::main(int argc, char** argv) {
    std::unique_ptr<mpi_world> world;
    try {
        world = std::make_unique<mpi_world>(&argc, &argv);
        return command(argc, argv, world->comm());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "scribe: %s\n", message_of(e).c_str());
        // Under mpirun, a failed rank ends the job rather than leave the others waiting.
        if (world && world->comm()) world->comm()->abort();
        return 1;
    }
}
