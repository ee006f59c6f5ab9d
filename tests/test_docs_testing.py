"""docs/testing.md's blocks are pytest tests: each runs under pytest, as a reader runs it.

Each block is written to a test file of its own in an empty folder (no project
configuration: as in a reader's project) and run with ``python -m pytest``; it must pass,
with at least one test collected (pytest exits 5 when it found none).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .test_docs import _blocks

BLOCKS = _blocks(["docs/testing.md"])


def test_every_block_of_the_page_is_here() -> None:
    """The page keeps its four blocks (a block dropped from the regex would go untested)."""
    assert len(BLOCKS) == 4


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_testing_page_blocks_pass_under_pytest(where: str, code: str, tmp_path: Path) -> None:
    """A block that stops working fails here, not in a reader's test suite."""
    (tmp_path / "test_block.py").write_text(code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_block.py"],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, f"{where}:\n{output}"
    assert " passed" in output and "failed" not in output, output
