"""scribe.train: `scribe train` in this process with a per-step callback; the
same run as the program's (same options, same losses), stopped by the
callback with a checkpoint, and resumed."""

import json
import math

import pytest

import scribe
from conftest import DATA, program


@pytest.fixture
def text(tmp_path):
    t = tmp_path / "text.txt"
    t.write_text("\n".join(f"The old man said the light shall be over the water {i}." for i in range(300)) + "\n")
    return t


OPTIONS = dict(steps=4, batch=2, seq=16, threads=1, lr=1e-3, seed=3, quiet=True)


def flags(options):
    out = []
    for k, v in options.items():
        out += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return out


def logged_losses(run):
    lines = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    return [l["loss"] for l in lines if "loss" in l and "step" in l and "perplexity" not in l and "val_loss" not in l]


def test_each_step_reaches_the_callback_and_the_run_is_the_programs(tmp_path, text):
    seen = []
    r = scribe.train(DATA / "gpt2-tiny-a", data=text, out=tmp_path / "py", callback=seen.append, **OPTIONS)
    assert [s.step for s in seen] == [1, 2, 3, 4] and all(s.total == 4 for s in seen)
    assert all(math.isfinite(s.loss) and s.tokens_per_s > 0 and s.lr > 0 for s in seen)
    assert r.steps == seen and r.step == 4 and r.stopped_by is None
    assert r.train_loss == seen[-1].loss and math.isfinite(r.val_loss) and len(r.evals) == 1
    assert (r.out / "model.safetensors").exists()
    # The program with the same flags trains the same model: the same losses.
    program("train", DATA / "gpt2-tiny-a", "--data", text, "--out", tmp_path / "cli", *flags(OPTIONS))
    cli = logged_losses(tmp_path / "cli")
    assert len(cli) == 4
    assert [s.loss for s in seen] == pytest.approx(cli, rel=1e-6)


def test_the_callback_stops_the_run_with_a_checkpoint(tmp_path, text):
    r = scribe.train(DATA / "gpt2-tiny-a", data=text, out=tmp_path / "run", callback=lambda s: s.step < 2, **OPTIONS)
    assert r.stopped_by == "caller" and r.step == 2 and r.checkpoint.endswith("checkpoint-2")
    more = scribe.train(data=text, out=tmp_path / "run", resume=r.checkpoint,
                        **OPTIONS)
    assert [s.step for s in more.steps] == [3, 4] and more.stopped_by is None


def test_what_the_callback_raises_is_raised(tmp_path, text):
    def fail(step):
        raise ValueError(f"enough at {step.step}")

    with pytest.raises(ValueError, match="enough at 1"):
        scribe.train(DATA / "gpt2-tiny-a", data=text, out=tmp_path / "run", callback=fail, **OPTIONS)
    assert (tmp_path / "run" / "checkpoint-1").is_dir()


def test_options_are_the_programs_flags(tmp_path, text):
    with pytest.raises(scribe.ScribeError, match="--stepz"):
        scribe.train(DATA / "gpt2-tiny-a", data=text, out=tmp_path / "run", stepz=3)
    with pytest.raises(scribe.ScribeError, match="--batch"):
        scribe.train(DATA / "gpt2-tiny-a", data=text, out=tmp_path / "run2", steps=2, batch=0)
