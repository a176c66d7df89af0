"""Hugging Face's generate() driving Scribe (scribe.hf): the adapter's tokens
against Scribe's own generate (the C++ path) and against transformers' PyTorch
model of the same checkpoint (an independent reference). Runs in the reference
environment (.venv-ref: torch, transformers), as the suite's test "python
transformers adapter" (python/meson.build)."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor

import scribe
from conftest import DATA, FAMILIES, golden
from scribe.hf import HuggingFaceGenerationModelAdapter, ScribeCache

torch.set_num_threads(2)


def load(name):
    lm = scribe.Decoder.from_pretrained(DATA / name, threads=2)
    return lm, HuggingFaceGenerationModelAdapter(lm)


def eos_of(adapter):
    e = adapter.generation_config.eos_token_id
    return [] if e is None else [int(x) for x in (e if isinstance(e, (list, tuple)) else [e])]


def pad_of(adapter):
    """What transformers puts after a row's end: the pad token, else the first end token."""
    p = adapter.generation_config.pad_token_id
    return p if p is not None else (eos_of(adapter) or [None])[0]


def made(out, prompt_columns):
    return out[:, prompt_columns:].tolist()


def cut(tokens, eos):
    """The tokens up to the first end token (kept)."""
    for i, t in enumerate(tokens):
        if t in eos:
            return tokens[: i + 1]
    return tokens


def ending_at_eos(tokens, eos, pad):
    """What transformers generated up to the first end token: after it, it must have padded."""
    kept = cut(tokens, eos)
    assert all(x == pad for x in tokens[len(kept):]), tokens
    return kept


@pytest.mark.parametrize("name", FAMILIES)
def test_greedy_equals_scribe_and_hugging_face(name):
    lm, model = load(name)
    eos = eos_of(model)
    pad = pad_of(model)
    for p in golden(name)["prompts"]:
        n = len(p["greedy"])
        out = model.generate(torch.tensor([p["ids"]]), max_new_tokens=n, do_sample=False)
        got = ending_at_eos(made(out, len(p["ids"]))[0], eos, pad)
        native = lm.generate(p["ids"], max_new_tokens=n, eos=eos).tokens[0].tolist()
        assert got == native, p["text"]
        assert got == cut(p["greedy"], eos), p["text"]  # transformers' greedy tokens (the golden)


@pytest.mark.parametrize("name", ["gpt2-tiny-a", "llama-tiny-gqa", "mistral-tiny", "opt-tiny"])
def test_seeded_sampling_equals_scribe(name):
    lm, model = load(name)
    ids = golden(name)["prompts"][1]["ids"]
    eos = eos_of(model)
    kw = dict(temperature=0.8, top_k=20, top_p=0.9)
    for seed in (11, 12):
        out = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=True, seed=seed, **kw)
        native = lm.generate(ids, max_new_tokens=10, do_sample=True, seed=seed, eos=eos, **kw).tokens[0].tolist()
        assert made(out, len(ids))[0][: len(native)] == native
    a = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=True, seed=11, **kw)
    b = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=True, seed=12, **kw)
    assert a.tolist() != b.tolist()


def padded(name, texts):
    tok = AutoTokenizer.from_pretrained(DATA / name, padding_side="left")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok(texts, return_tensors="pt", padding=True)


TEXTS = ["Hello there, how are", "In the", "A much longer prompt than the others, in a row of its own"]


@pytest.mark.parametrize("name", ["gpt2-tiny-a", "llama-tiny-gqa", "llama3-bpe-tiny"])
def test_left_padded_batch(name):
    """Each row of a batch padded on the left generates what it generates alone
    (greedy), what Scribe's batch draws (sampled), and what transformers' own
    PyTorch model generates for the same padded batch (greedy)."""
    lm, model = load(name)
    enc = padded(name, TEXTS)
    assert (enc["attention_mask"] == 0).any()
    columns = enc["input_ids"].shape[1]
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    rows = [enc["input_ids"][b][enc["attention_mask"][b] == 1].tolist() for b in range(len(TEXTS))]
    eos = eos_of(model)
    pad = pad_of(model)
    for b, row in enumerate(rows):
        alone = lm.generate(row, max_new_tokens=8, eos=eos).tokens[0].tolist()
        assert ending_at_eos(made(out, columns)[b], eos, pad) == alone
    reference = AutoModelForCausalLM.from_pretrained(DATA / name, dtype=torch.float32)
    assert out.tolist() == reference.generate(**enc, max_new_tokens=8, do_sample=False).tolist()
    # The rows went through Scribe as one batch (its decode graph runs them together).
    res = model.generate(**enc, max_new_tokens=8, do_sample=False, return_dict_in_generate=True)
    cache = res["cache"] if "cache" in res else res["past_key_values"]
    assert cache._batch is not None and res.sequences.tolist() == out.tolist()

    sampled = model.generate(**enc, max_new_tokens=8, do_sample=True, temperature=0.9, seed=3)
    native = lm.generate(rows, max_new_tokens=8, do_sample=True, temperature=0.9, seed=3, eos=eos).tokens
    for b in range(len(TEXTS)):
        assert ending_at_eos(made(sampled, columns)[b], eos, pad) == native[b].tolist()


def test_forward_logits_and_loss_equal_hugging_face():
    """A forward of whole rows (no cache): every column's logits as Scribe's
    Decoder.logits gives them, zeros where the mask pads, and the loss of
    labels as transformers' PyTorch model computes it."""
    name = "llama-tiny-gqa"
    lm, model = load(name)
    enc = padded(name, TEXTS)
    out = model(**enc)
    assert out.logits.shape == (len(TEXTS), enc["input_ids"].shape[1], lm.vocab_size)
    for b in range(len(TEXTS)):
        keep = enc["attention_mask"][b] == 1
        row = enc["input_ids"][b][keep].tolist()
        np.testing.assert_array_equal(out.logits[b][keep].numpy(), lm.logits(row))
        assert not out.logits[b][~keep].any()
    ids = torch.tensor([golden(name)["prompts"][1]["ids"]])
    reference = AutoModelForCausalLM.from_pretrained(DATA / name, dtype=torch.float32)
    with torch.no_grad():
        want = reference(input_ids=ids, labels=ids)
    got = model(input_ids=ids, labels=ids)
    np.testing.assert_allclose(got.logits.numpy(), want.logits.numpy(), atol=1e-4, rtol=0)
    assert abs(got.loss.item() - want.loss.item()) < 1e-4


def test_the_cache_is_scribes():
    """generate() returns the cache it used: Scribe's, its rows holding the
    prompt and the tokens made; a forward of one more column continues it."""
    name = "gpt2-tiny-a"
    lm, model = load(name)
    ids = golden(name)["prompts"][1]["ids"]
    out = model.generate(torch.tensor([ids]), max_new_tokens=5, do_sample=False, return_dict_in_generate=True)
    cache = out["cache"] if "cache" in out else out["past_key_values"]
    assert isinstance(cache, ScribeCache)
    seq = out.sequences[0].tolist()
    assert cache.tokens[0] == seq[:-1]  # the last token made was never fed
    assert cache.get_seq_length() == len(seq) - 1
    step = model(input_ids=out.sequences[:, -1:], attention_mask=torch.ones((1, len(seq)), dtype=torch.long), cache=cache,
                 logits_to_keep=1)
    np.testing.assert_allclose(step.logits[0, -1].numpy(), lm.logits(seq)[-1], atol=1e-5, rtol=0)


def test_beam_search_equals_hugging_face():
    """Beam search (which reorders the cache's rows) gives transformers' own
    PyTorch model's beams."""
    name = "llama-tiny-gqa"
    _, model = load(name)
    reference = AutoModelForCausalLM.from_pretrained(DATA / name, dtype=torch.float32)
    for p in golden(name)["prompts"][:2]:
        ids = torch.tensor([p["ids"]])
        kw = dict(max_new_tokens=8, num_beams=3, num_return_sequences=3, do_sample=False)
        got = model.generate(input_ids=ids, **kw)
        assert len({tuple(r) for r in got.tolist()}) == 3  # three different beams
        assert got.tolist() == reference.generate(input_ids=ids, **kw).tolist()


def test_logits_processors_and_streamers_apply():
    """What transformers adds around the model works as for its own models: a
    logits processor that bans a token, and a streamer that sees every token."""
    name = "gpt2-tiny-a"
    lm, model = load(name)
    ids = golden(name)["prompts"][1]["ids"]
    first = lm.generate(ids, max_new_tokens=1).tokens[0][0]

    class Ban(LogitsProcessor):
        def __call__(self, input_ids, scores):
            scores[:, first] = float("-inf")
            return scores

    seen = []

    class Streamer:
        def put(self, value):
            seen.append(value.reshape(-1).tolist())

        def end(self):
            seen.append("end")

    for sample in (False, True):
        seen.clear()
        out = model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=sample, seed=1, logits_processor=[Ban()],
                             streamer=Streamer())
        tokens = made(out, len(ids))[0]
        assert first not in tokens
        assert seen[0] == ids and seen[-1] == "end" and [t for s in seen[1:-1] for t in s] == tokens


def test_errors_name_what_is_wrong():
    name = "gpt2-tiny-a"
    lm, model = load(name)
    with pytest.raises(TypeError, match="scribe.Decoder"):
        HuggingFaceGenerationModelAdapter("tests/data/gpt2-tiny-a")
    with pytest.raises(ValueError, match="inputs_embeds"):
        model(inputs_embeds=torch.zeros((1, 2, 8)))
    with pytest.raises(ValueError, match="row 1 has no tokens"):
        model(input_ids=torch.tensor([[5, 6], [7, 8]]), attention_mask=torch.tensor([[1, 1], [0, 0]]))
    with pytest.raises(ValueError, match=r"attention_mask is \[1, 3\]"):
        model(input_ids=torch.tensor([[5, 6]]), attention_mask=torch.tensor([[1, 1, 1]]))
    with pytest.raises(ValueError, match="sampler takes"):
        model.generate(torch.tensor([[5, 6]]), sampler="numpy")
    with pytest.raises(scribe.ScribeError, match="outside the vocabulary"):
        model(input_ids=torch.tensor([[5, lm.vocab_size]]))
    with pytest.raises(scribe.ScribeError, match="positions"):
        model.generate(torch.tensor([[5] * 10]), max_new_tokens=lm.max_positions, do_sample=False)
