#!/usr/bin/env python3
"""Make the tiny encoder checkpoints (BERT, RoBERTa, DistilBERT) the C++ tests compare against.

What it writes (committed, so the test suite never needs torch). The sizes are odd on purpose,
the head counts and MLP widths divide by the tensor-parallel degrees 2 and 4, and the position
tables are short (so buckets and truncation are exercised with short inputs):

  tests/data/bert-tiny-cls/        BertForSequenceClassification: hidden 36, 2 layers, 4 heads
                                   (head_dim 9), intermediate 92, gelu, max_position_embeddings 48,
                                   type_vocab_size 2, layer_norm_eps 1e-12, 3 labels (id2label
                                   not_paraphrase / paraphrase / unsure); WordPiece, lowercased
                                   and accents stripped (BERT-uncased settings)
  tests/data/roberta-tiny-cls/     RobertaForSequenceClassification: hidden 44, 2 layers, 4 heads
                                   (11), intermediate 100, gelu, max_position_embeddings 50 (48
                                   usable: RoBERTa's positions start after pad_token_id 1),
                                   type_vocab_size 1, layer_norm_eps 1e-5, 3 labels; byte-level
                                   BPE with RoBERTa's <s> A </s></s> B </s> template
  tests/data/distilbert-tiny-cls/  DistilBertForSequenceClassification: dim 40, 2 layers, 4 heads
                                   (10), hidden_dim 84, gelu, max_position_embeddings 48, no token
                                   types, 3 labels; WordPiece, lowercased
  tests/data/bert-tiny-embed/      BertModel as a sentence-embedding checkpoint: hidden 32, 3 layers,
                                   4 heads (8), intermediate 68, gelu, max_position_embeddings 48,
                                   with its pooler; WordPiece, cased (no lowercasing, accents
                                   kept); sentence-transformers' modules.json and
                                   1_Pooling/config.json (mean pooling)

  Each folder holds model.safetensors and config.json (save_pretrained, float32), the tokenizer
  (tokenizer.json, tokenizer_config.json; vocab.txt for WordPiece, vocab.json + merges.txt for
  RoBERTa) and golden.json:
      {versions, "generator", "max_length": 48,
       "inputs": [{"text", "pair" (or null), "ids", "token_types",
                   "logits": [labels] (classification checkpoints),
                   "mean": [hidden]   the last hidden state averaged over the input's tokens,
                   "cls":  [hidden]   the last hidden state of the first token,
                   "pooled": [hidden] (BERT checkpoints with a pooler: tanh(dense(cls)))}],
       "truncated": index of the input that the tokenizer truncated to max_length}
  The ids come from the Hugging Face tokenizer (truncation=True, max_length=48). Each input is
  run alone; the script asserts that the same inputs as one right-padded batch with an
  attention mask give the same outputs within 1e-5, and that the SDPA path agrees within 1e-4.
  Floats are the shortest decimal strings that round-trip the float32 values.
  tokenizer_golden.json: TOKENIZER_CORPUS (accents, CJK, Hangul, scripts, punctuation, symbols,
  emoji, control and zero-width characters, whitespace runs, words of 99 to 135 characters,
  special tokens inside text) through the Hugging Face tokenizer: each text's ids without
  special tokens ("plain") and their decoding, alone in the template and as a pair with the next
  text, truncated to max_length (ids and token types); the script asserts that the classic files
  (vocab.txt; vocab.json + merges.txt) tokenize every case alike.

  The weights are re-drawn with larger spreads than the libraries' init, as make_golden.py
  does (weights N(0, 0.2^2), word embeddings N(0, 0.3^2), position and token-type tables
  N(0, 0.1^2), biases N(0, 0.05^2), LayerNorm gamma 1 + N(0, 0.1^2), beta N(0, 0.05^2)), so a
  loader that drops a bias or a norm parameter fails the comparison.

Run (a few seconds). The `tokenizers` trainers are not deterministic from run to run (a vocabulary may
differ by a token or two), so a run rewrites every file of a folder together:
  .venv-ref/bin/python scripts/reference/make_encoder_golden.py [--out DIR] [--only NAME[,NAME]]
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    DistilBertTokenizerFast,
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaTokenizerFast,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_golden import CORPUS  # noqa: E402  (the same English training text)

MAX_LENGTH = 48
LABELS = {0: "not_paraphrase", 1: "paraphrase", 2: "unsure"}

# More text for the tokenizers' alphabets: accents, CJK, punctuation.
EXTRA = """\
Le café était fermé, mais la crème brûlée restait délicieuse. Über die Brücke gingen
zwölf Männer. 東京と大阪は大きな都市です。北京欢迎你。Naïve façades, rôles, señor, Ångström.
"""

# Texts and pairs (a paraphrase and a non-paraphrase, as in the guide, and longer and odder ones).
INPUTS = [
    ("The miller gave her bread and a bowl of warm soup.", "She was given soup and bread by the miller."),
    ("The miller gave her bread and a bowl of warm soup.", "The children came to see the new lambs."),
    ("The miller opened the door.", None),
    ("Café crème, naïve Ångström; 東京 and 北京!", None),
    ("Why?", None),
    ("He listened until the fire burned low and the stars came out over the river, and then he told the"
     " traveller about the wheel, the stone, the grain and the flour, slowly and with a smile, again and again.", None),
    ("Where did the water go?", "It ran on to the sea, as it always had."),
]


# The tokenizer corpus: every input is tokenized alone and as the first of a pair
# with the next one (tokenizer_golden.json).
TOKENIZER_CORPUS = [
    "The miller opened the door.", "the MILLER Opened THE door", "Hello, world! How are you?", "don't won't I'm you're they've",
    "Café crème brûlée", "naïve façade rôle", "Ångström señor Ærøskøbing", "Über die Brücke gingen zwölf Männer.",
    "e\u0301 vs \u00e9 (combining acute)", "STRASSE straße ß", "İstanbul ıi", "ΣΟΦΙΑ σοφία ς", "Москва – столица России.",
    "東京と大阪は大きな都市です。", "北京欢迎你", "한국어 텍스트입니다", "مرحبا بالعالم", "नमस्ते दुनिया", "ภาษาไทย",
    "3.14159 and 2,718 and 1e-9", "$100 + 20% = <cost> ^ `tick` | ~tilde", "email: someone@example.com, url: https://x.org/a?b=c",
    "((nested [brackets] {braces}))", "...!!!???", "— “quoted” ‘single’ «guillemets» …", "tab\there\nnewline\r\nreturn",
    "   leading and trailing   ", "multiple     spaces\t\t tabs", "", " ", "\u200bzero\u200bwidth\u200b", "soft\u00adhyphen",
    "null\x00byte and \x07bell", "private \ue000 use", "emoji 😀🎉👍🏽 ❤️", "snowman ☃ and ♞ chess", "ﬁ ligature and ① circled",
    "Supercalifragilisticexpialidocious", "a" * 99, "b" * 100, "c" * 101, "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "[CLS] inside [SEP] text [MASK]", "[cls] lowercase [sep]", "<s> roberta </s> tokens <mask>", "the [UNK] token",
    "ﾊﾝｶｸ half-width ｶﾀｶﾅ", "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "ǅ titlecase ǈ", "x²+y³ ½ ¾", "Ⅻ roman numeral",
    "The river ran past the old mill and down to the sea. Every morning the miller opened the great wooden doors.",
    "He listened until the fire burned low and the stars came out over the river, " * 3,
]


def shortest(x):
    return [np.format_float_positional(np.float32(v), unique=True, trim="-") if abs(v) >= 1e-4 or v == 0
            else np.format_float_scientific(np.float32(v), unique=True, trim="-") for v in np.asarray(x, np.float32).ravel()]


def spread_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.split(".")[-2] if name.endswith((".weight", ".bias")) else name
            if "LayerNorm" in name or "layer_norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + torch.randn(p.shape, generator=g) *
                        (0.1 if name.endswith("weight") else 0.05))
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
            elif leaf == "word_embeddings":
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif leaf in ("position_embeddings", "token_type_embeddings"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def wordpiece(lowercase, size):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None if not lowercase else True, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator([CORPUS, EXTRA], trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def byte_bpe(size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS, EXTRA], trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
                                                      trim_offsets=True, add_prefix_space=False)
    return tok


def specs():
    return {
        "bert-tiny-cls": dict(seed=11, kind="bert", head=True, tokenizer=lambda: wordpiece(True, 520)),
        "roberta-tiny-cls": dict(seed=12, kind="roberta", head=True, tokenizer=lambda: byte_bpe(600)),
        "distilbert-tiny-cls": dict(seed=13, kind="distilbert", head=True, tokenizer=lambda: wordpiece(True, 500)),
        "bert-tiny-embed": dict(seed=14, kind="bert", head=False, tokenizer=lambda: wordpiece(False, 540)),
    }


def make_model(spec, vocab):
    kind, head = spec["kind"], spec["head"]
    labels = dict(num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    if kind == "bert" and head:
        cfg = BertConfig(vocab_size=vocab, hidden_size=36, num_hidden_layers=2, num_attention_heads=4, intermediate_size=92,
                         max_position_embeddings=MAX_LENGTH, type_vocab_size=2, pad_token_id=0, **labels)
        return BertForSequenceClassification(cfg), BertTokenizerFast
    if kind == "bert":
        cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=68,
                         max_position_embeddings=MAX_LENGTH, type_vocab_size=2, pad_token_id=0)
        return BertModel(cfg), BertTokenizerFast
    if kind == "roberta":
        cfg = RobertaConfig(vocab_size=vocab, hidden_size=44, num_hidden_layers=2, num_attention_heads=4, intermediate_size=100,
                            max_position_embeddings=MAX_LENGTH + 2, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                            eos_token_id=2, layer_norm_eps=1e-5, **labels)
        return RobertaForSequenceClassification(cfg), RobertaTokenizerFast
    cfg = DistilBertConfig(vocab_size=vocab, dim=40, n_layers=2, n_heads=4, hidden_dim=84, max_position_embeddings=MAX_LENGTH,
                           pad_token_id=0, **labels)
    return DistilBertForSequenceClassification(cfg), DistilBertTokenizerFast


def outputs(model, enc, head):
    """Per row of a (padded) batch: logits, mean, cls, pooled."""
    with torch.no_grad():
        args = dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        if "token_type_ids" in enc:
            args["token_type_ids"] = enc["token_type_ids"]
        base = model.base_model
        out = base(**args)
        h = out.last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        res = {"mean": (h * mask).sum(1) / mask.sum(1), "cls": h[:, 0]}
        if getattr(out, "pooler_output", None) is not None:
            res["pooled"] = out.pooler_output
        if head:
            res["logits"] = model(**args).logits
    return res


def build(name, spec, out_dir):
    torch.manual_seed(spec["seed"])
    tok = spec["tokenizer"]()
    model, tok_class = make_model(spec, tok.get_vocab_size())
    spread_weights(model, spec["seed"])
    model.eval()
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(folder, safe_serialization=True)
    extra = {}
    if spec["kind"] == "roberta":
        extra = dict(bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                     mask_token="<mask>")
    else:
        extra = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                     do_lower_case=spec["kind"] != "bert" or spec["head"])
    fast = tok_class(tokenizer_object=tok, model_max_length=MAX_LENGTH, **extra)
    fast.save_pretrained(folder)
    # The classic vocabulary files too (transformers 5 writes tokenizer.json only).
    by_id = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    if spec["kind"] == "roberta":
        (folder / "vocab.json").write_text(json.dumps(dict(by_id), ensure_ascii=False) + "\n")
        merges = json.loads(tok.to_str())["model"]["merges"]
        (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(
            (" ".join(m) if isinstance(m, list) else m) + "\n" for m in merges))
    else:
        (folder / "vocab.txt").write_text("".join(t + "\n" for t, _ in by_id))
    if not spec["head"]:
        (folder / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}], indent=2) + "\n")
        (folder / "1_Pooling").mkdir(exist_ok=True)
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": model.config.hidden_size, "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False}, indent=2) + "\n")

    loaded = type(model).from_pretrained(folder, attn_implementation="eager").eval()
    sdpa = type(model).from_pretrained(folder, attn_implementation="sdpa").eval()
    for (a, p), (b, q) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert a == b and torch.equal(p, q), a
    tokenizer = tok_class.from_pretrained(folder)
    rows, truncated = [], None
    for i, (text, pair) in enumerate(INPUTS):
        enc = tokenizer(text, pair, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        full = tokenizer(text, pair)["input_ids"]
        if len(full) > MAX_LENGTH:
            truncated = i
        res = outputs(loaded, enc, spec["head"])
        ref = outputs(sdpa, enc, spec["head"])
        for k in res:
            assert torch.allclose(res[k], ref[k], atol=1e-4), (name, k)
        row = {"text": text, "pair": pair, "ids": enc["input_ids"][0].tolist(),
               "token_types": enc["token_type_ids"][0].tolist() if "token_type_ids" in enc else [0] * enc["input_ids"].shape[1]}
        for k, v in res.items():
            row[k] = shortest(v[0])
        rows.append(row)
    assert truncated is not None, "one input must be longer than max_length"
    # The same inputs as one right-padded batch.
    batch = tokenizer([t for t, _ in INPUTS], [p or "" for _, p in INPUTS], truncation=True, max_length=MAX_LENGTH,
                      padding=True, return_tensors="pt")
    singles = [tokenizer(t, p, truncation=True, max_length=MAX_LENGTH, return_tensors="pt") for t, p in INPUTS]
    padded = tokenizer.pad({"input_ids": [s["input_ids"][0].tolist() for s in singles],
                            "attention_mask": [s["attention_mask"][0].tolist() for s in singles],
                            **({"token_type_ids": [s["token_type_ids"][0].tolist() for s in singles]}
                               if "token_type_ids" in singles[0] else {})}, return_tensors="pt")
    del batch
    res = outputs(loaded, padded, spec["head"])
    for i, row in enumerate(rows):
        for k in res:
            assert np.allclose(res[k][i].numpy(), np.asarray(row[k], np.float32), atol=1e-5), (name, "padded batch", k, i)
    tokenizer_golden(name, spec, folder, tokenizer)
    golden = {
        "transformers": transformers.__version__, "torch": torch.__version__, "tokenizers": tokenizers.__version__,
        "numpy": np.__version__, "generator": "scripts/reference/make_encoder_golden.py", "max_length": MAX_LENGTH,
        "model": {"class": type(model).__name__, "seed": spec["seed"], "dtype": "float32"},
        "inputs": rows, "truncated": truncated,
    }
    (folder / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    print(f"{name}: {type(model).__name__}, vocab {tok.get_vocab_size()}, {len(rows)} inputs -> {folder}")


def tokenizer_golden(name, spec, folder, tokenizer):
    """tokenizer_golden.json: the corpus through the Hugging Face tokenizer, each text alone
    (no special tokens, and in the template truncated to max_length) and as a pair with the
    next text. Asserts that the classic vocabulary files tokenize the same."""
    classic = None
    if spec["kind"] == "roberta":
        from transformers import RobertaTokenizer
        classic = RobertaTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"),
                                   model_max_length=MAX_LENGTH)
    else:
        from transformers import BertTokenizer
        lower = spec["kind"] != "bert" or spec["head"]
        classic = BertTokenizer(vocab=str(folder / "vocab.txt"), do_lower_case=lower, model_max_length=MAX_LENGTH)
    cases = []
    for i, text in enumerate(TOKENIZER_CORPUS):
        pair = TOKENIZER_CORPUS[(i + 1) % len(TOKENIZER_CORPUS)]
        plain = tokenizer.encode(text, add_special_tokens=False)
        single = tokenizer(text, truncation=True, max_length=MAX_LENGTH)
        both = tokenizer(text, pair, truncation=True, max_length=MAX_LENGTH)
        for t in ([text], [text, pair]):
            a, b = tokenizer(*t, truncation=True, max_length=MAX_LENGTH), classic(*t, truncation=True, max_length=MAX_LENGTH)
            assert a["input_ids"] == b["input_ids"], (name, "classic files differ", t, a["input_ids"], b["input_ids"])
        types = lambda enc: enc.get("token_type_ids", [0] * len(enc["input_ids"]))
        cases.append({"text": text, "pair": pair, "plain": plain, "decoded": tokenizer.decode(plain),
                      "single": single["input_ids"], "single_types": types(single),
                      "both": both["input_ids"], "both_types": types(both)})
    (folder / "tokenizer_golden.json").write_text(json.dumps({
        "tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
        "generator": "scripts/reference/make_encoder_golden.py", "max_length": MAX_LENGTH, "cases": cases},
        indent=1, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests" / "data")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    want = set(filter(None, args.only.split(",")))
    for name, spec in specs().items():
        if not want or name in want:
            build(name, spec, args.out)


if __name__ == "__main__":
    main()
