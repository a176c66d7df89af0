"""The package's Encoder against Hugging Face's outputs (the goldens) and the program."""

import json

import numpy as np
import pytest

import scribe
from conftest import DATA, golden, program

ENCODERS = ["bert-tiny-cls", "bert-tiny-embed", "roberta-tiny-cls", "distilbert-tiny-cls"]


def floats(v):
    return np.asarray([float(x) for x in v], dtype=np.float32)


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("tp", [1, 2])
def test_encodings_equal_hugging_face(name, tp):
    g = golden(name)
    enc = scribe.Encoder.from_pretrained(DATA / name, tp=tp, threads=2)
    # The input the reference cut to max_length is left to the truncation test.
    inputs = [x for i, x in enumerate(g["inputs"]) if i != g["truncated"]]
    texts = [x["text"] for x in inputs]
    pairs = [x.get("pair") for x in inputs]
    with_pairs = [i for i, p in enumerate(pairs) if p is not None]
    alone = [i for i, p in enumerate(pairs) if p is None]
    for rows, out in [(alone, enc.encode([texts[i] for i in alone]) if alone else None),
                      (with_pairs, enc.encode([texts[i] for i in with_pairs], [pairs[i] for i in with_pairs]) if with_pairs else None)]:
        if out is None:
            continue
        assert out.mean.shape == (len(rows), enc.hidden_size) and out.mean.dtype == np.float32
        for k, i in enumerate(rows):
            np.testing.assert_allclose(out.mean[k], floats(inputs[i]["mean"]), atol=1e-4, rtol=0)
            np.testing.assert_allclose(out.first[k], floats(inputs[i]["cls"]), atol=1e-4, rtol=0)
            if "logits" in inputs[i] and enc.labels:
                np.testing.assert_allclose(out.logits[k], floats(inputs[i]["logits"]), atol=1e-4, rtol=0)


def test_classify_equals_the_program():
    name = "bert-tiny-cls"
    x = golden(name)["inputs"][0]
    enc = scribe.Encoder.from_pretrained(DATA / name, threads=2)
    got = enc.classify(x["text"], x["pair"])[0]
    line = json.loads(program("classify", DATA / name, "--text", x["text"], "--pair", x["pair"], "--json").splitlines()[0])
    assert got["label"] == line["label"]
    assert got["scores"].keys() == line["scores"].keys()
    for label, p in line["scores"].items():
        assert got["scores"][label] == pytest.approx(p, abs=1e-6)
    assert sum(got["scores"].values()) == pytest.approx(1.0)


def test_embed_pooling_and_normalize():
    enc = scribe.Encoder.from_pretrained(DATA / "bert-tiny-embed", threads=2)
    assert enc.inspect()["pooling"] in ("mean", "cls")
    v = enc.embed(["The miller", "A river ran by"], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    raw = enc.encode(["The miller", "A river ran by"])
    pooled = raw.mean if enc.inspect()["pooling"] == "mean" else raw.first
    np.testing.assert_allclose(v, pooled / np.linalg.norm(pooled, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_array_equal(enc.embed("The miller", pooling="cls"), enc.encode("The miller").first)
    printed = program("embed", DATA / "bert-tiny-embed", "--text", "The miller", "--normalize")
    assert np.allclose([float(t) for t in printed.split()[1:]], v[0], atol=1e-5)


def test_buckets_and_truncation():
    enc = scribe.Encoder.from_pretrained(DATA / "bert-tiny-cls", buckets=[8, 32], threads=2)
    out = enc.encode(["short", "a somewhat longer sentence about the old mill by the river"])  # 3 and 24 tokens
    assert out.buckets.tolist() == [8, 32]
    with pytest.raises(scribe.ScribeError, match="longer than the largest bucket 32"):
        enc.encode(" ".join(["the old mill"] * 12))  # 38 tokens: fits the model's 48 positions, not the buckets
    enc = scribe.Encoder.from_pretrained(DATA / "bert-tiny-cls", threads=2)  # default buckets: up to the model's positions
    long = " ".join(["word"] * 2000)
    with pytest.raises(scribe.ScribeError, match="give truncate=True"):
        enc.encode(long)
    assert enc.encode(long, truncate=True).mean.shape == (1, enc.hidden_size)


def test_truncation_equals_hugging_face():
    g = golden("bert-tiny-cls")
    x = g["inputs"][g["truncated"]]
    enc = scribe.Encoder.from_pretrained(DATA / "bert-tiny-cls", threads=2)
    assert enc.inspect()["positions"] == g["max_length"]  # the reference cut it to the model's positions
    out = enc.encode(x["text"], x["pair"], truncate=True)
    np.testing.assert_allclose(out.mean[0], floats(x["mean"]), atol=1e-4, rtol=0)


def test_encoder_errors():
    with pytest.raises(scribe.ScribeError, match="encoders run in f32, f16 or bf16"):
        scribe.Encoder.from_pretrained(DATA / "bert-tiny-cls", dtype="q8")
    with pytest.raises(scribe.ScribeError, match="not an encoder"):
        scribe.Encoder.from_pretrained(DATA / "gpt2-tiny-a")
    enc = scribe.Encoder.from_pretrained(DATA / "bert-tiny-embed", threads=2)
    if not enc.labels:
        with pytest.raises(scribe.ScribeError, match="has no classifier"):
            enc.classify("text")
    with pytest.raises(ValueError, match="2 texts but 1 pairs"):
        enc.encode(["a", "b"], ["c"])


def test_export_hlo_of_an_encoder(tmp_path):
    enc = scribe.Encoder.from_pretrained(DATA / "distilbert-tiny-cls", tp=2, buckets=[16, 48], threads=2)
    manifest = enc.export_hlo(tmp_path / "py")
    program("export-hlo", DATA / "distilbert-tiny-cls", "--out", tmp_path / "cli", "--tp", 2, "--buckets", "16,48")
    assert manifest["tp"] == 2 and len(manifest["modules"]) == 2
    for m in manifest["modules"]:
        for f in (m["text"], m["proto"]):
            assert (tmp_path / "py" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes()
