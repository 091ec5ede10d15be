"""The README's Python snippets run as pasted (slow: one process each).

Every ```python block runs in a fresh interpreter, in a directory holding
the repository's `data/samples` (the README's paths are relative to a
clone). A block that needs something outside the repository (a server, a
dataset) is marked on the line before it with
`<!-- readme-test: skip (the reason) -->` and is only listed.
"""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
SKIP = re.compile(r"<!-- readme-test: skip \((.+)\) -->")


def python_blocks(text):
    """`(line number, code, skip reason or None)` of each ```python block."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() != "```python":
            continue
        end = lines.index("```", number + 1)
        marker = SKIP.search(lines[number - 1]) if number else None
        code = "\n".join(lines[number + 1 : end]) + "\n"
        blocks.append((number + 1, code, marker.group(1) if marker else None))
    return blocks


with open(README, encoding="utf-8") as f:
    BLOCKS = python_blocks(f.read())


def test_readme_has_snippets_to_run():
    assert sum(reason is None for _, _, reason in BLOCKS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("line, code, reason", BLOCKS, ids=[f"line{line}" for line, _, _ in BLOCKS])
def test_readme_python_block_runs_as_pasted(line, code, reason, tmp_path):
    if reason is not None:
        pytest.skip(f"README line {line}: {reason}")
    os.makedirs(tmp_path / "data")
    os.symlink(os.path.join(REPO, "data", "samples"), tmp_path / "data" / "samples")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"README line {line}:\n{result.stderr[-3000:]}"
