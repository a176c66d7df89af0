"""The program's commands from Python: export_hlo writes what `scribe export-hlo`
writes, and a compiled artifact loads at its own degree."""

import json

import numpy as np
import pytest

import scribe
from conftest import DATA, golden, program


def test_export_hlo_equals_the_program(tmp_path):
    lm = scribe.Decoder.from_pretrained(DATA / "llama-tiny-gqa", tp=2, threads=2)
    manifest = lm.export_hlo(tmp_path / "py", buckets=[16, 32])
    program("export-hlo", DATA / "llama-tiny-gqa", "--out", tmp_path / "cli", "--tp", 2, "--dtype", "f32", "--batch", 1,
            "--buckets", "16,32")
    names = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "py").iterdir())
    assert {"prefill_16.hlo", "prefill_16.pb", "prefill_32.hlo", "decode.hlo", "decode.pb", "manifest.json"} <= set(names)
    for n in names:
        if n != "manifest.json":
            assert (tmp_path / "py" / n).read_bytes() == (tmp_path / "cli" / n).read_bytes(), n
    assert manifest["tp"] == 2 and [m["kind"] for m in manifest["modules"]] == ["prefill", "prefill", "decode"]
    cli_manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert manifest["modules"] == cli_manifest["modules"]


def test_cli_runs_a_command_and_raises_its_errors(tmp_path, capfd):
    assert scribe.cli(["inspect", str(DATA / "gpt2-tiny-a")]) == 0
    assert "GPT-2" in capfd.readouterr().out
    with pytest.raises(scribe.ScribeError, match="does not exist"):
        scribe.cli(["inspect", str(tmp_path / "missing")])
    with pytest.raises(scribe.ScribeError, match="--tp"):
        scribe.cli(["export-hlo", str(DATA / "gpt2-tiny-a"), "--out", str(tmp_path / "x"), "--tp", "zero"])


def test_a_compiled_artifact(tmp_path):
    art = tmp_path / "art"
    assert scribe.cli(["compile", str(DATA / "opt-tiny"), "--out", str(art), "--tp", "2", "--dtype", "bf16", "--buckets", "16,32"]) == 0
    lm = scribe.Decoder.from_pretrained(art, threads=2)
    info = lm.inspect()
    assert info["tp"] == 2 and info["dtype"] == "bf16" and info["buckets"] == [16, 32]
    assert info["compiled"]["tp"] == 2 and info["packed_bytes"] == 0
    folder = scribe.Decoder.from_pretrained(DATA / "opt-tiny", tp=2, dtype="bf16", buckets=[16, 32], threads=2)
    p = golden("opt-tiny")["prompts"][2]["ids"]
    assert lm.generate(p, 8, stop_at_eos=False).tokens[0].tolist() == folder.generate(p, 8, stop_at_eos=False).tokens[0].tolist()
    np.testing.assert_array_equal(lm.logits(p), folder.logits(p))
    with pytest.raises(scribe.ScribeError, match="compiled for --tp 2"):
        scribe.Decoder.from_pretrained(art, tp=1)


def test_a_training_run_leaves_pythons_ctrl_c_alone(tmp_path):
    """scribe train catches SIGINT while it runs (to save and stop); afterwards
    Ctrl-C is Python's KeyboardInterrupt again, not the end of the process."""
    import os
    import signal
    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"The old man said the light shall be over the water {i}." for i in range(200)) + "\n")
    assert scribe.cli(["train", str(DATA / "gpt2-tiny-a"), "--data", str(text), "--out", str(tmp_path / "run"), "--steps", "2",
                       "--batch", "2", "--seq", "16", "--threads", "1", "--quiet"]) == 0
    assert (tmp_path / "run" / "model.safetensors").exists()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at the interpreter's next check
            sum(range(100))
