"""Scribe's errors reach Python as exceptions that carry its message, naming the
thing that was wrong."""

import pytest

import scribe
from conftest import DATA


def test_a_missing_folder():
    with pytest.raises(scribe.ScribeError, match="no-such-model.*does not exist"):
        scribe.Decoder.from_pretrained(DATA / "no-such-model")
    assert issubclass(scribe.ScribeError, RuntimeError)


def test_an_encoder_folder_is_not_a_decoder():
    with pytest.raises(scribe.ScribeError, match="is an encoder, not a decoder"):
        scribe.Decoder.from_pretrained(DATA / "bert-tiny-cls")


def test_bad_options():
    with pytest.raises(scribe.ScribeError, match='dtype takes f32, f16, bf16, q8 or q4, not "f8"'):
        scribe.Decoder.from_pretrained(DATA / "gpt2-tiny-a", dtype="f8")
    with pytest.raises(scribe.ScribeError, match="tp"):
        scribe.Decoder.from_pretrained(DATA / "gpt2-tiny-a", tp=5)


def test_bad_prompts():
    lm = scribe.Decoder.from_pretrained(DATA / "gpt2-tiny-a", threads=2)
    with pytest.raises(scribe.ScribeError, match=r"token 100000, outside the vocabulary of \d+"):
        lm.generate([1, 100000], 4)
    with pytest.raises(scribe.ScribeError, match="prompt 0 is empty"):
        lm.generate([[]], 4)
    with pytest.raises(scribe.ScribeError, match="positions"):
        lm.generate([1] * (lm.max_positions + 1), 4)
    with pytest.raises(scribe.ScribeError, match="max_new_tokens must be at least 1"):
        lm.generate([1, 2], 0)
    with pytest.raises(scribe.ScribeError, match="top_p must be in"):
        lm.generate([1, 2], 4, do_sample=True, top_p=1.5)
    with pytest.raises(TypeError, match="integer token ids, not float64"):
        lm.generate([1.5, 2.0], 4)
    with pytest.raises(TypeError, match="a list of int, list"):
        lm.generate([1, [2]], 4)
    with pytest.raises(ValueError, match="out of range"):
        lm.generate([1, 2**40], 4)
    with pytest.raises(ValueError, match="temperature above 0"):
        lm.generate([1, 2], 4, do_sample=True, temperature=0)
    # Nothing was lost: the model still generates.
    assert len(lm.generate([1, 2], 2, stop_at_eos=False).tokens[0]) == 2


def test_a_sequence_misused():
    lm = scribe.Decoder.from_pretrained(DATA / "gpt2-tiny-a", threads=2)
    s = lm.sequence()
    with pytest.raises(scribe.ScribeError, match=r"start\(\) it before extend\(\)"):
        s.extend([1])
    s.start([1, 2, 3], room=4)
    with pytest.raises(scribe.ScribeError, match="rewind to 9 positions, but it holds 3"):
        s.rewind(9)


def test_a_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in (DATA / "gpt2-tiny-a").iterdir():
        if f.is_file():
            (bad / f.name).write_bytes(f.read_bytes())
    weights = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(scribe.ScribeError, match="model.safetensors"):
        scribe.Decoder.from_pretrained(bad)
