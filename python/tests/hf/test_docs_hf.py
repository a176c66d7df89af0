"""The ```python blocks of docs/python.md and README.md that use scribe.hf run
(in a fresh Python of the reference environment) and exit with status 0; the
others are tests/test_docs.py's."""

import pytest

from test_docs import blocks, run_block


def test_there_are_blocks():
    assert len(list(blocks(hf=True))) >= 1


@pytest.mark.parametrize("code", list(blocks(hf=True)))
def test_block_runs(code, tmp_path):
    run_block(code, tmp_path)
