"""Every ```python block of docs/python.md and README.md runs (in a fresh Python,
from a folder whose models/ and tests/ are the repository's) and exits with
status 0."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "python.md", ROOT / "README.md"]


def blocks(hf=False):
    """The blocks; those that use scribe.hf (torch, transformers) with hf only:
    tests/hf/test_docs_hf.py runs them, in the reference environment."""
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            if ("scribe.hf" in m.group(1)) != hf:
                continue
            line = text.count("\n", 0, m.start()) + 1
            yield pytest.param(m.group(1), id=f"{doc.name}:{line}")


def test_there_are_blocks():
    assert len(list(blocks())) >= 8


@pytest.mark.parametrize("code", list(blocks()))
def test_block_runs(code, tmp_path):
    run_block(code, tmp_path)


def run_block(code, tmp_path):
    (tmp_path / "models").symlink_to(ROOT / "models")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ))
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
