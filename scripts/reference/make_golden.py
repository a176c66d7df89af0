#!/usr/bin/env python3
"""Make the tiny GPT-2/OPT/GPT-J/LLaMA/Mistral golden checkpoints the C++ tests compare against.

What it writes (the folders are committed, so the test suite never needs torch). All have
bos_token_id = eos_token_id = 0 (<|endoftext|>) in config.json; the head counts and MLP widths
of the new families are divisible by the tensor-parallel degrees 2 and 4, and the sizes are odd
(not powers of two) on purpose:

  tests/data/gpt2-tiny-a/   GPT2LMHeadModel: vocab 301, n_positions 64, n_embd 36, 2 layers,
                            4 heads (head_dim 9), n_inner None (= 4*36 = 144), gelu_new,
                            layer_norm_epsilon 1e-5, tied LM head
  tests/data/gpt2-tiny-b/   GPT2LMHeadModel: vocab 397, n_positions 80, n_embd 52, 3 layers,
                            4 heads (head_dim 13), n_inner 140, gelu (exact erf), tied LM head
  tests/data/opt-tiny/      OPTForCausalLM, pre-LN like OPT-125m: vocab 307, hidden 40, 2 layers,
                            4 heads (head_dim 10), ffn_dim 92, relu, max_position_embeddings 64
                            (the table has 64 + 2 rows: OPT offsets positions by 2),
                            word_embed_proj_dim 40 (no project_in/out), biases everywhere,
                            LayerNorm eps 1e-5 (fixed, not in config.json), final LayerNorm,
                            pad_token_id 1, tied LM head
  tests/data/opt-tiny-post/ OPTForCausalLM, post-LN like OPT-350m: do_layer_norm_before False,
                            vocab 293, hidden 44, 2 layers, 4 heads (head_dim 11), ffn_dim 100,
                            relu, max_position_embeddings 64, word_embed_proj_dim 24 (so
                            project_in 24->44 and project_out 44->24, no biases; embed_tokens and
                            the tied LM head are vocab x 24), no final LayerNorm (transformers
                            makes one only when do_layer_norm_before), pad_token_id 1
  tests/data/gptj-tiny/     GPTJForCausalLM: vocab 311, n_positions 64, n_embd 48, 2 layers,
                            4 heads (head_dim 12), rotary_dim 8 (the last 4 dims of each head
                            are not rotated), n_inner None (= 192), gelu_new, layer_norm_epsilon
                            1e-5, untied LM head with a bias; parallel attention + MLP on one ln_1
  tests/data/llama-tiny-gqa/ LlamaForCausalLM: vocab 317, hidden 48, intermediate 100, 2 layers,
                            8 query heads and 2 key/value heads (head_dim 6, 4 query heads per
                            KV head), rms_norm_eps 1e-6, default RoPE theta 10000, silu,
                            no biases, untied LM head
  tests/data/llama-tiny-mqa/ LlamaForCausalLM, Llama-3 style: vocab 331, hidden 40, intermediate
                            92, 2 layers, 4 query heads and 1 key/value head (head_dim 10),
                            rms_norm_eps 1e-5, RoPE theta 500000 with "llama3" scaling (factor 8,
                            low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings
                            16: of the 5 inverse frequencies the fastest (wavelength 2*pi, between
                            16/4 and 16/1) is smoothed and the other 4 are divided by 8; none can
                            stay as is, that needs a wavelength < 4), silu, tied LM head
  tests/data/mistral-tiny/  MistralForCausalLM: vocab 299, hidden 32, intermediate 84, 2 layers,
                            4 query heads and 2 key/value heads with head_dim 12 (deliberately
                            not hidden/heads = 8: q_proj is 48x32, o_proj 32x48), rms_norm_eps
                            1e-5, RoPE theta 10000, silu, sliding_window 8, untied LM head

  transformers 5 writes the RoPE settings of LLaMA/Mistral into config.json as one object,
  "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0} (llama-tiny-mqa:
  {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
  "high_freq_factor": 4.0, "original_max_position_embeddings": 16}), with no top-level
  "rope_theta" or "rope_scaling" as older configs (and most Hub checkpoints) have; it also
  writes the derived "head_dim". GPT-J's RoPE base is 10000, fixed in the code, not in config.json.

  Each folder holds:
    model.safetensors, config.json      <Model>.save_pretrained(safe_serialization=True), float32
                                        (a tied LM head is not stored: no lm_head.weight)
    tokenizer.json                      byte-level BPE trained here with `tokenizers` (GPT-2 settings)
    vocab.json, merges.txt              the same BPE as GPT-2's classic file pair
    tokenizer_config.json               so that transformers.AutoTokenizer.from_pretrained(folder)
                                        works (transformers >= 5 writes no special_tokens_map.json)
    golden.json                         the expected outputs:
      {"transformers": ver, "torch": ver, "tokenizers": ver, "safetensors": ver, "numpy": ver,
       "generator": this script,
       "model": {the config arguments in SPECS below, "seed", "tied_lm_head", "dtype": "float32"},
       "eos_token_id": id, "n_new_tokens": 12,
       "prompts": [{"text", "ids",                  ids from the Hugging Face tokenizer
                    "logits": [[vocab]]*len(ids),   model(ids).logits, float32
                    "greedy": [12 ids],             argmax each step, never stopping at EOS
                    "greedy_text",                  tokenizer.decode(greedy)
                    "step_logits": [[vocab]]*12,    logits of the last position before step i's choice
                    "min_margin"}]}                 smallest top-1 minus top-2 logit over the 12 steps
    Floats are the shortest decimal strings that round-trip the float32 values exactly. The
    prompts differ between the models (their tokenizers split differently) and have 1, 5,
    about 12 and about 30 ids. The logits are bit-exact for torch on one thread (the script sets
    it); other thread counts or libraries move them by about 1e-6.

How the data is made:
  * The tokenizer: byte-level BPE (ByteLevel pre-tokenizer with GPT-2's regex,
    add_prefix_space=False; ByteLevel decoder; special token <|endoftext|>), trained on the
    short English text CORPUS below to exactly the model's vocab size (256 byte symbols +
    <|endoftext|> + merges), saved through GPT2TokenizerFast for every family.
    <|endoftext|> gets id 0 (the trainer puts special tokens first), and config.json's
    bos_token_id/eos_token_id say so.
  * The weights: <Model>(<Config>(...)) under torch.manual_seed, then every parameter is
    re-drawn (spread_weights, in named_parameters() order) with larger spreads than the
    libraries' init (std 0.02 gives nearly flat logits): weights N(0, 0.2^2), token embeddings
    (wte, embed_tokens) N(0, 0.3^2), an untied LM head weight N(0, 0.3^2) as well (0.2 gave
    logit spreads of about 1), learned position tables (wpe, OPT's embed_positions) N(0, 0.1^2),
    all biases N(0, 0.05^2) (GPT-J's lm_head.bias included), LayerNorm/RMSNorm gamma
    1 + N(0, 0.1^2), LayerNorm beta N(0, 0.05^2), so that a loader that drops a bias or a norm
    parameter fails the comparison and the last-position logits spread over about 2 units.
    The script saves, reloads from disk and asserts that the reloaded tensors are the drawn ones.
  * The reference is the eager attention path, float32, one full forward per greedy step
    (no generate(), no KV cache). The script asserts that every greedy step's top-1 / top-2
    margin is >= 1e-2 (the seeds were picked for margins >= 0.04), that the SDPA path agrees
    within 1e-4, that the same prompts run as one right-padded batch with an attention mask
    give the same logits at the real positions, and that the classic GPT2Tokenizer
    (vocab.json + merges.txt) tokenizes like tokenizer.json. Exception: gptj-tiny has no SDPA
    check, because transformers has no SDPA attention for GPT-J (GPTJ_ATTENTION_CLASSES holds
    only "eager" and "flash_attention_2", and from_pretrained(attn_implementation="sdpa")
    raises ValueError); its padded-batch check runs on the eager path only.
  * mistral-tiny: the eager reference applies the sliding window. The script checks that the
    mask transformers builds lets query i see exactly the keys j with i - 8 < j <= i (8 keys,
    itself included), and that on the 30-id prompt the logits match those of the same weights
    loaded with sliding_window=None at positions 0..7 and differ at every position from 8 on
    (by more than 1e-2; by up to about 8). The SDPA and padded-batch checks pass with the
    window too.

Run (about 10 s on one core; deterministic: same library versions, same bytes):
  bash -c 'cd /work/main && source scripts/setup.sh && scribe_setup_reference'
  .venv-ref/bin/python scripts/reference/make_golden.py            # every folder, in tests/data
  .venv-ref/bin/python scripts/reference/make_golden.py --out DIR  # every folder, in DIR
  .venv-ref/bin/python scripts/reference/make_golden.py --only opt-tiny,mistral-tiny  # just these
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from safetensors import safe_open
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Tokenizer,
    GPT2TokenizerFast,
    GPTJConfig,
    GPTJForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    OPTConfig,
    OPTForCausalLM,
)
from transformers.masking_utils import create_sliding_window_causal_mask

EOT = "<|endoftext|>"
N_NEW = 12
MIN_MARGIN = 1e-2

# The tokenizer's training text (written for this script; no outside source).
CORPUS = """\
The river ran past the old mill and down to the sea. Every morning the miller opened the
great wooden doors, and the light came in over the sacks of flour. He was a patient man,
and he liked to watch the water turn the wheel while the town woke up around him.

In the spring the children came to the mill to see the new lambs in the field behind it.
They asked the miller many questions: why the wheel turned, where the water went, and how
the flour was made from the grain. He answered them all, slowly and with a smile.

"The water does the work," he said. "I only help it along. The wheel turns the stone, the
stone grinds the grain, and the grain becomes the flour that makes your bread."

One evening a traveller knocked at the door. She had walked for three days across the hills,
and she was tired and hungry. The miller gave her bread and a bowl of warm soup, and she told
him about the cities in the north, the ships in the harbour, and the mountains covered in
snow. He listened until the fire burned low and the stars came out over the river.

In the morning she thanked him and went on her way. The miller stood at the door and watched
her walk along the road until she was only a small shape on the top of the hill. Then he went
back to his work, and the wheel turned, and the water ran on to the sea as it always had.

Years later the town had grown into a city, and the old mill was a museum. Children still came
to see the wheel turn, and a new guide told them the story of the patient miller and the
traveller from the north, who had written a book about the places she had seen.
"""

# Per model (the tokenizers split differently): (text, number of ids) for about
# 1, 5, 12 and 30 tokens.
PROMPTS = {
    "gpt2-tiny-a": [
        ("The", 1),
        ("The old mill", 5),
        ("The miller opened the door", 11),
        ("He answered them all, slowly and with a smile.", 29),
    ],
    "gpt2-tiny-b": [
        ("The", 1),
        ("The miller opened", 5),
        ("In the spring the children came", 12),
        ("Then he went back to his work, and the wheel turned, and the water ran on to the sea.", 30),
    ],
    "opt-tiny": [
        ("The", 1),
        ("They asked", 5),
        ("The river ran past the", 12),
        ("He listened until the fire burned low and the stars", 30),
    ],
    "opt-tiny-post": [
        ("The", 1),
        ("The river", 5),
        ("He was a patient", 12),
        ("The river ran past the old mill and down to the sea.", 30),
    ],
    "gptj-tiny": [
        ("The", 1),
        ("The wheel turns", 5),
        ("Children still came", 12),
        ("She had walked for three days across the hills, and she", 30),
    ],
    "llama-tiny-gqa": [
        ("The", 1),
        ("Then he went", 5),
        ("The miller stood at the door", 12),
        ("The miller stood at the door and watched her walk along the road", 30),
    ],
    "llama-tiny-mqa": [
        ("The", 1),
        ("They asked", 5),
        ("In the morning she thanked", 12),
        ("Then he went back to his work, and the wheel turned, and the water ran on to the", 30),
    ],
    "mistral-tiny": [
        ("The", 1),
        ("He was a", 5),
        ("They asked the miller many", 12),
        ("The wheel turns the stone, the stone grinds the grain,", 30),
    ],
}

# Per family: the classes, the config key of the position limit, and which checks apply.
FAMILIES = {
    "gpt2": dict(config=GPT2Config, model=GPT2LMHeadModel, max_pos="n_positions",
                 sdpa=True, padded_batch=True),
    "opt": dict(config=OPTConfig, model=OPTForCausalLM, max_pos="max_position_embeddings",
                sdpa=True, padded_batch=True),
    # transformers has no SDPA attention for GPT-J (only eager and flash_attention_2), and
    # from_pretrained(attn_implementation="sdpa") raises ValueError: nothing to compare with.
    "gptj": dict(config=GPTJConfig, model=GPTJForCausalLM, max_pos="n_positions",
                 sdpa=False, padded_batch=True),
    "llama": dict(config=LlamaConfig, model=LlamaForCausalLM, max_pos="max_position_embeddings",
                  sdpa=True, padded_batch=True),
    "mistral": dict(config=MistralConfig, model=MistralForCausalLM,
                    max_pos="max_position_embeddings", sdpa=True, padded_batch=True),
}

SPECS = {
    "gpt2-tiny-a": dict(
        family="gpt2", seed=3, tied=True,
        config=dict(vocab_size=301, n_positions=64, n_embd=36, n_layer=2, n_head=4,
                    n_inner=None, activation_function="gelu_new", layer_norm_epsilon=1e-5),
    ),
    "gpt2-tiny-b": dict(
        family="gpt2", seed=6, tied=True,
        config=dict(vocab_size=397, n_positions=80, n_embd=52, n_layer=3, n_head=4,
                    n_inner=140, activation_function="gelu", layer_norm_epsilon=1e-5),
    ),
    "opt-tiny": dict(
        family="opt", seed=55, tied=True,
        config=dict(vocab_size=307, hidden_size=40, num_hidden_layers=2, ffn_dim=92,
                    num_attention_heads=4, max_position_embeddings=64,
                    do_layer_norm_before=True, word_embed_proj_dim=40,
                    activation_function="relu", enable_bias=True,
                    layer_norm_elementwise_affine=True, pad_token_id=1),
    ),
    "opt-tiny-post": dict(
        family="opt", seed=7, tied=True,
        config=dict(vocab_size=293, hidden_size=44, num_hidden_layers=2, ffn_dim=100,
                    num_attention_heads=4, max_position_embeddings=64,
                    do_layer_norm_before=False, word_embed_proj_dim=24,
                    activation_function="relu", enable_bias=True,
                    layer_norm_elementwise_affine=True, pad_token_id=1),
    ),
    "gptj-tiny": dict(
        family="gptj", seed=33, tied=False,
        config=dict(vocab_size=311, n_positions=64, n_embd=48, n_layer=2, n_head=4,
                    rotary_dim=8, n_inner=None, activation_function="gelu_new",
                    layer_norm_epsilon=1e-5, tie_word_embeddings=False),
    ),
    "llama-tiny-gqa": dict(
        family="llama", seed=19, tied=False,
        config=dict(vocab_size=317, hidden_size=48, intermediate_size=100, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=64,
                    rms_norm_eps=1e-6,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                    hidden_act="silu", tie_word_embeddings=False, attention_bias=False,
                    mlp_bias=False),
    ),
    "llama-tiny-mqa": dict(
        family="llama", seed=6, tied=True,
        config=dict(vocab_size=331, hidden_size=40, intermediate_size=92, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=64,
                    rms_norm_eps=1e-5,
                    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                     "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 16},
                    hidden_act="silu", tie_word_embeddings=True, attention_bias=False,
                    mlp_bias=False),
    ),
    "mistral-tiny": dict(
        family="mistral", seed=37, tied=False,
        config=dict(vocab_size=299, hidden_size=32, intermediate_size=84, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                    max_position_embeddings=64, rms_norm_eps=1e-5,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                    hidden_act="silu", sliding_window=8, tie_word_embeddings=False),
    ),
}


def train_tokenizer(vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([CORPUS], trainer=trainer)
    assert tok.get_vocab_size() == vocab_size, (tok.get_vocab_size(), vocab_size)
    return tok


def save_tokenizer(tok: Tokenizer, folder: Path, max_len: int) -> GPT2TokenizerFast:
    tok.save(str(folder / "tokenizer.json"))
    tok.model.save(str(folder))  # vocab.json + merges.txt
    hf = GPT2TokenizerFast(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        tokenizer_file=str(folder / "tokenizer.json"),
        bos_token=EOT, eos_token=EOT, unk_token=EOT, add_prefix_space=False,
        model_max_length=max_len,
    )
    hf.save_pretrained(str(folder))  # tokenizer_config.json (and tokenizer.json again)
    saved = json.loads((folder / "tokenizer.json").read_text())
    assert saved["model"] == json.loads(tok.to_str())["model"], "save_pretrained changed the BPE"
    # Reload from the folder as a user would.
    return GPT2TokenizerFast.from_pretrained(str(folder))


def pair_tokenizers(folder: Path) -> list:
    """Tokenizers built from vocab.json + merges.txt alone, to check the pair matches."""
    bpe = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    only_pair = folder.parent / f".{folder.name}-pair"
    only_pair.mkdir(exist_ok=True)
    for f in ("vocab.json", "merges.txt"):
        (only_pair / f).write_bytes((folder / f).read_bytes())
    hf = GPT2Tokenizer.from_pretrained(str(only_pair))
    for f in only_pair.iterdir():
        f.unlink()
    only_pair.rmdir()
    return [lambda t: bpe.encode(t).ids, lambda t: hf(t)["input_ids"]]


# Parameters are told apart by the name of the module that holds them.
EMBEDDING_MODULES = {"wte", "embed_tokens"}            # token embeddings
OUTPUT_MODULES = {"lm_head"}                           # only seen when not tied
POSITION_MODULES = {"wpe", "embed_positions"}          # learned position tables
NORM_MODULES = {"ln_1", "ln_2", "ln_f",                 # GPT-2, GPT-J LayerNorm
                "self_attn_layer_norm", "final_layer_norm",  # OPT LayerNorm
                "input_layernorm", "post_attention_layernorm", "norm"}  # LLaMA/Mistral RMSNorm


def spread_weights(model: torch.nn.Module) -> None:
    """Re-draws every parameter with spreads that give logits of several units.

    Tied parameters appear once (named_parameters() skips the tied lm_head.weight); an untied
    lm_head.weight gets the embedding's spread (0.2 would give logits of about one unit).
    The draws follow the parameter order, so the GPT-2 folders keep the values they always had."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            module = name.split(".")[-2]
            if module in EMBEDDING_MODULES or (module in OUTPUT_MODULES
                                               and name.endswith(".weight")):
                p.normal_(0.0, 0.3)  # an untied LM head like the embedding it would share
            elif module in POSITION_MODULES:
                p.normal_(0.0, 0.1)
            elif module in NORM_MODULES and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.normal_(0.0, 0.05)  # norm biases too
            else:
                assert name.endswith(".weight") and p.dim() == 2, name
                p.normal_(0.0, 0.2)


def f32(x: float) -> float:
    """The shortest decimal that round-trips the float32 value (json writes it as such)."""
    return float(str(np.float32(x)))


def rows(t: torch.Tensor) -> list:
    a = t.detach().to(torch.float32).cpu().numpy()
    return [[f32(v) for v in row] for row in a]


def margin(logits: torch.Tensor) -> float:
    top2 = torch.topk(logits, 2).values
    return float(top2[0] - top2[1])


@torch.no_grad()
def check_sliding_window(name: str, folder: Path, model, prompts: list) -> None:
    """Mistral: the eager reference really applies the window (query i sees keys j with
    i - window < j <= i), so the logits differ from the same weights without a window."""
    window = model.config.sliding_window
    assert window is not None and window > 0, name
    mask = create_sliding_window_causal_mask(
        config=model.config, inputs_embeds=torch.zeros(1, 3 * window, 1),
        attention_mask=None, past_key_values=None,
        position_ids=torch.arange(3 * window)[None])
    i, j = torch.meshgrid(torch.arange(3 * window), torch.arange(3 * window), indexing="ij")
    assert torch.equal(mask[0, 0] == 0, (j <= i) & (j > i - window)), (name, mask)
    full = type(model).from_pretrained(str(folder), attn_implementation="eager",
                                       sliding_window=None).eval()
    assert full.config.sliding_window is None
    longest = max(prompts, key=lambda p: len(p["ids"]))
    assert len(longest["ids"]) > window, name
    got = longest["_logits_t"]
    ref = full(torch.tensor([longest["ids"]])).logits[0]
    # The first `window` positions see their whole causal prefix either way ...
    torch.testing.assert_close(got[:window], ref[:window], rtol=1e-5, atol=1e-5)
    # ... the later ones do not.
    diff = (got[window:] - ref[window:]).abs().amax(dim=-1)
    assert bool((diff > 1e-2).all()), (name, diff)


@torch.no_grad()
def make_one(name: str, spec: dict, out: Path) -> dict:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    family = FAMILIES[spec["family"]]
    cfg_args = spec["config"]
    vocab = cfg_args["vocab_size"]
    max_pos = cfg_args[family["max_pos"]]

    tok_raw = train_tokenizer(vocab)
    hf_tok = save_tokenizer(tok_raw, folder, max_pos)
    eot_id = tok_raw.token_to_id(EOT)
    pair_toks = pair_tokenizers(folder)

    torch.manual_seed(spec["seed"])
    config = family["config"](**cfg_args, bos_token_id=eot_id, eos_token_id=eot_id,
                              attn_implementation="eager")
    model_cls = family["model"]
    model = model_cls(config)
    spread_weights(model)
    model.eval()
    tied = (model.get_output_embeddings().weight.data_ptr()
            == model.get_input_embeddings().weight.data_ptr())
    assert tied == spec["tied"], (name, tied)

    # Save, then reload from disk so the reference runs on exactly the stored values.
    for stale in ("model.safetensors", "pytorch_model.bin", "generation_config.json"):
        (folder / stale).unlink(missing_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "generation_config.json").unlink(missing_ok=True)  # not needed by the tests
    os.chmod(folder / "model.safetensors", 0o644)  # safetensors writes 0600
    drawn = {k: v.clone() for k, v in model.state_dict().items()}
    model = model_cls.from_pretrained(str(folder), attn_implementation="eager").eval()
    loaded = model.state_dict()
    assert sorted(loaded) == sorted(drawn), name
    for k, v in drawn.items():
        assert torch.equal(loaded[k], v), (name, k)
    sdpa = None
    if family["sdpa"]:
        sdpa = model_cls.from_pretrained(str(folder), attn_implementation="sdpa").eval()

    prompts = []
    for text, n_ids in PROMPTS[name]:
        ids = hf_tok(text)["input_ids"]
        assert len(ids) == n_ids, (name, text, len(ids), ids)
        assert ids == tok_raw.encode(text).ids, (name, text)
        for pt in pair_toks:
            assert ids == pt(text), (name, text, ids, pt(text))
        assert hf_tok.decode(ids) == text
        assert len(ids) + N_NEW <= max_pos
        logits = model(torch.tensor([ids])).logits[0]
        assert logits.dtype == torch.float32
        if sdpa is not None:
            torch.testing.assert_close(sdpa(torch.tensor([ids])).logits[0], logits,
                                       rtol=1e-4, atol=1e-4)

        seq = list(ids)
        greedy, step_logits, margins = [], [], []
        for _ in range(N_NEW):
            last = model(torch.tensor([seq])).logits[0, -1]
            nxt = int(torch.argmax(last))
            margins.append(margin(last))
            step_logits.append(last)
            greedy.append(nxt)
            seq.append(nxt)
        assert min(margins) >= MIN_MARGIN, (name, text, margins)
        torch.testing.assert_close(step_logits[0], logits[-1], rtol=0, atol=0)
        prompts.append(dict(
            text=text, ids=ids, logits=rows(logits), greedy=greedy,
            greedy_text=hf_tok.decode(greedy), step_logits=rows(torch.stack(step_logits)),
            min_margin=min(margins),
            _logits_t=logits,
        ))

    # One right-padded batch with an attention mask must give the same logits at real positions.
    if family["padded_batch"]:
        n = max(len(p["ids"]) for p in prompts)
        batch = torch.full((len(prompts), n), eot_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), n), dtype=torch.long)
        for i, p in enumerate(prompts):
            batch[i, :len(p["ids"])] = torch.tensor(p["ids"])
            mask[i, :len(p["ids"])] = 1
        for m in (model, sdpa):
            if m is None:
                continue
            out_b = m(batch, attention_mask=mask).logits
            for i, p in enumerate(prompts):
                torch.testing.assert_close(out_b[i, :len(p["ids"])], p["_logits_t"],
                                           rtol=1e-5, atol=1e-5)
    if getattr(model.config, "sliding_window", None) is not None:
        check_sliding_window(name, folder, model, prompts)
    for p in prompts:
        del p["_logits_t"]

    spread = float(torch.stack([torch.tensor(p["logits"][-1]) for p in prompts]).std())
    golden = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "generator": "scripts/reference/make_golden.py",
        "model": dict(cfg_args, seed=spec["seed"], tied_lm_head=spec["tied"], dtype="float32"),
        "eos_token_id": eot_id,
        "n_new_tokens": N_NEW,
        "prompts": prompts,
    }
    with open(folder / "golden.json", "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")

    # Report.
    print(f"== {name}: eos id {eot_id}, last-position logit std {spread:.2f}")
    with safe_open(str(folder / "model.safetensors"), "pt") as st:
        print("  safetensors metadata:", st.metadata())
        for k in st.keys():
            t = st.get_slice(k)
            print(f"  tensor {k:40s} {t.get_dtype():5s} {t.get_shape()}")
    for p in prompts:
        print(f"  prompt ({len(p['ids'])} ids) {p['text']!r} -> {p['greedy_text']!r}"
              f"  greedy {p['greedy']}  min margin {p['min_margin']:.4f}")
    total = 0
    for f in sorted(folder.iterdir()):
        total += f.stat().st_size
        print(f"  {f.name:28s} {f.stat().st_size:8d} bytes")
    print(f"  total {total} bytes")
    assert total < 1_000_000, total
    return golden


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[2] / "tests" / "data")
    ap.add_argument("--only", metavar="NAME[,NAME]",
                    help="make only these folders (default: all): " + ", ".join(SPECS))
    args = ap.parse_args()
    names = list(SPECS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SPECS]
        if unknown or not names:
            ap.error(f"unknown folder name(s) {unknown}; known: {', '.join(SPECS)}")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"tokenizers {tokenizers.__version__}, numpy {np.__version__}")
    for name in names:
        make_one(name, SPECS[name], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
