"""What the package's tests share: the golden checkpoints (tests/data, made by
Hugging Face transformers: scripts/reference/make_golden.py) and the `scribe`
program the package is compared with (the suite passes both; see
python/meson.build)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

DATA = Path(os.environ.get("SCRIBE_TEST_DATA", Path(__file__).resolve().parents[2] / "tests" / "data"))
PROGRAM = os.environ.get("SCRIBE_PROGRAM")

# Every decoder family the runtime reads, each with its golden outputs.
FAMILIES = ["gpt2-tiny-a", "gptj-tiny", "opt-tiny", "opt-tiny-post", "llama-tiny-gqa", "llama-tiny-mqa",
            "mistral-tiny", "llama2-sp-tiny", "llama3-bpe-tiny"]


def golden(name):
    with open(DATA / name / "golden.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture
def data():
    return DATA


def program(*args, raw=False):
    """The `scribe` program's standard output for ARGS (it must succeed): text, or
    with raw the bytes (a random model's tokens need not make whole characters)."""
    if not PROGRAM:
        pytest.fail("SCRIBE_PROGRAM is not set: the suite passes the scribe program (python/meson.build)")
    r = subprocess.run([PROGRAM, *map(str, args)], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout if raw else r.stdout.decode()
