"""Code in the docs is real: every Python block in these pages runs as it is written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [
    "README.md",
    "docs/getting-started.md",
    "docs/concepts.md",
    "docs/sockets.md",  # defines main() only: no agent to connect to here
    "docs/opentelemetry.md",  # its OTLP block finds no receiver: counted, not raised
    "docs/development.md",
]
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks(pages: list[str] = PAGES) -> list[tuple[str, str]]:
    found = []
    for page in pages:
        for number, block in enumerate(_BLOCK.findall((ROOT / page).read_text()), 1):
            found.append((f"{page}#{number}", block))
    return found


@pytest.mark.parametrize(("where", "code"), _blocks(), ids=[where for where, _ in _blocks()])
def test_python_blocks_in_the_docs_run(where: str, code: str, tmp_path: Path) -> None:
    """A block that stops working fails here, not in a reader's terminal."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, f"{where}:\n{result.stderr.decode()}"
