#!/usr/bin/env python3
"""Make the tiny GPT-2 golden checkpoints that the C++ tests compare against.

What it writes (the folders are committed, so the test suite never needs torch):

  tests/data/gpt2-tiny-a/   vocab 301, n_positions 64, n_embd 36, 2 layers, 4 heads
                            (head_dim 9), n_inner None (= 4*36 = 144), gelu_new,
                            layer_norm_epsilon 1e-5, tied LM head
  tests/data/gpt2-tiny-b/   vocab 397, n_positions 80, n_embd 52, 3 layers, 4 heads
                            (head_dim 13), n_inner 140, gelu (exact erf), tied LM head

  Each folder holds:
    model.safetensors, config.json      GPT2LMHeadModel.save_pretrained(safe_serialization=True), float32
    tokenizer.json                      byte-level BPE trained here with `tokenizers` (GPT-2 settings)
    vocab.json, merges.txt              the same BPE as GPT-2's classic file pair
    tokenizer_config.json               so that transformers.AutoTokenizer.from_pretrained(folder)
                                        works (transformers >= 5 writes no special_tokens_map.json)
    golden.json                         the expected outputs:
      {"transformers": ver, "torch": ver, "tokenizers": ver, "safetensors": ver, "numpy": ver,
       "generator": this script, "model": {sizes, seed}, "eos_token_id": id, "n_new_tokens": 12,
       "prompts": [{"text", "ids",                  ids from the Hugging Face tokenizer
                    "logits": [[vocab]]*len(ids),   model(ids).logits, float32
                    "greedy": [12 ids],             argmax each step, never stopping at EOS
                    "greedy_text",                  tokenizer.decode(greedy)
                    "step_logits": [[vocab]]*12,    logits of the last position before step i's choice
                    "min_margin"}]}                 smallest top-1 minus top-2 logit over the 12 steps
    Floats are the shortest decimal strings that round-trip the float32 values exactly. The
    prompts differ between the two models (their tokenizers split differently) and have 1, 5,
    about 12 and about 30 ids. The logits are bit-exact for torch on one thread (the script sets
    it); other thread counts or libraries move them by about 1e-6.

How the data is made:
  * The tokenizer: byte-level BPE (ByteLevel pre-tokenizer with GPT-2's regex,
    add_prefix_space=False; ByteLevel decoder; special token <|endoftext|>), trained on the
    short English text CORPUS below to exactly the model's vocab size (256 byte symbols +
    <|endoftext|> + merges). <|endoftext|> gets id 0 (the trainer puts special tokens first),
    and config.json's bos_token_id/eos_token_id say so.
  * The weights: GPT2LMHeadModel(GPT2Config(...)) under torch.manual_seed, then every parameter
    is re-drawn with larger spreads than GPT-2's init (std 0.02 gives nearly flat logits):
    weights N(0, 0.2^2), wte N(0, 0.3^2), wpe N(0, 0.1^2), biases N(0, 0.05^2),
    LayerNorm gamma 1 + N(0, 0.1^2), beta N(0, 0.05^2), so that a loader that drops a bias or a
    LayerNorm parameter fails the comparison and the logits spread over several units.
  * The reference is the eager attention path, float32, one full forward per greedy step
    (no generate(), no KV cache). The script asserts that every greedy step's top-1 / top-2
    margin is >= 1e-2 (the seeds were picked for margins >= 0.04), that the SDPA path agrees, that the same prompts run as one right-padded
    batch with an attention mask give the same logits at the real positions, and that the
    classic GPT2Tokenizer (vocab.json + merges.txt) tokenizes like tokenizer.json.

Run (about 15 s on one core; deterministic: same library versions, same bytes):
  bash -c 'cd /work/main && source scripts/setup.sh && scribe_setup_reference'
  .venv-ref/bin/python scripts/reference/make_golden.py          # writes tests/data/gpt2-tiny-{a,b}
  .venv-ref/bin/python scripts/reference/make_golden.py --out DIR  # writes DIR/gpt2-tiny-{a,b}
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
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer, GPT2TokenizerFast

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

# Per model (the two tokenizers split differently): (text, number of ids) for about
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
}

SPECS = {
    "gpt2-tiny-a": dict(
        seed=3,
        config=dict(vocab_size=301, n_positions=64, n_embd=36, n_layer=2, n_head=4,
                    n_inner=None, activation_function="gelu_new", layer_norm_epsilon=1e-5),
    ),
    "gpt2-tiny-b": dict(
        seed=6,
        config=dict(vocab_size=397, n_positions=80, n_embd=52, n_layer=3, n_head=4,
                    n_inner=140, activation_function="gelu", layer_norm_epsilon=1e-5),
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


def spread_weights(model: GPT2LMHeadModel) -> None:
    """Re-draws every parameter with spreads that give logits of several units."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("wte.weight"):
                p.normal_(0.0, 0.3)
            elif name.endswith("wpe.weight"):
                p.normal_(0.0, 0.1)
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                if name.endswith(".weight"):
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
                else:
                    p.normal_(0.0, 0.05)
            elif name.endswith(".bias"):
                p.normal_(0.0, 0.05)
            else:
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
def make_one(name: str, spec: dict, out: Path) -> dict:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    cfg_args = spec["config"]
    vocab = cfg_args["vocab_size"]

    tok_raw = train_tokenizer(vocab)
    hf_tok = save_tokenizer(tok_raw, folder, cfg_args["n_positions"])
    eot_id = tok_raw.token_to_id(EOT)
    pair_toks = pair_tokenizers(folder)

    torch.manual_seed(spec["seed"])
    config = GPT2Config(**cfg_args, bos_token_id=eot_id, eos_token_id=eot_id,
                        attn_implementation="eager")
    model = GPT2LMHeadModel(config)
    spread_weights(model)
    model.eval()
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # tied

    # Save, then reload from disk so the reference runs on exactly the stored values.
    for stale in ("model.safetensors", "pytorch_model.bin", "generation_config.json"):
        (folder / stale).unlink(missing_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "generation_config.json").unlink(missing_ok=True)  # not needed by the tests
    os.chmod(folder / "model.safetensors", 0o644)  # safetensors writes 0600
    model = GPT2LMHeadModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    sdpa = GPT2LMHeadModel.from_pretrained(str(folder), attn_implementation="sdpa").eval()

    prompts = []
    for text, n_ids in PROMPTS[name]:
        ids = hf_tok(text)["input_ids"]
        assert len(ids) == n_ids, (name, text, len(ids), ids)
        assert ids == tok_raw.encode(text).ids, (name, text)
        for pt in pair_toks:
            assert ids == pt(text), (name, text, ids, pt(text))
        assert hf_tok.decode(ids) == text
        assert len(ids) + N_NEW <= cfg_args["n_positions"]
        logits = model(torch.tensor([ids])).logits[0]
        assert logits.dtype == torch.float32
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
    n = max(len(p["ids"]) for p in prompts)
    batch = torch.full((len(prompts), n), eot_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), n), dtype=torch.long)
    for i, p in enumerate(prompts):
        batch[i, :len(p["ids"])] = torch.tensor(p["ids"])
        mask[i, :len(p["ids"])] = 1
    for m in (model, sdpa):
        out_b = m(batch, attention_mask=mask).logits
        for i, p in enumerate(prompts):
            torch.testing.assert_close(out_b[i, :len(p["ids"])], p["_logits_t"],
                                       rtol=1e-5, atol=1e-5)
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
        "model": dict(cfg_args, seed=spec["seed"], tied_lm_head=True, dtype="float32"),
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
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"tokenizers {tokenizers.__version__}, numpy {np.__version__}")
    for name, spec in SPECS.items():
        make_one(name, spec, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
