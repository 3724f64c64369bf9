"""The rehearsal's second chain: the ```bash blocks of docs/rag.md, chat.md, compare.md, estudo.md and the other
pages after the README's first stages (test_ensaio.DOCS, from docs/rag.md on), as written, in reading order.

A reader of these pages has followed the README; so this chain starts from a copy of the first chain's clone taken
right after the README's last block (test_ensaio.hand_off), and under make test's two pytest-xdist workers the
two chains run side by side. Run without the first chain (this file alone, or the first chain deselected), it
runs the README's blocks itself first. The stand-ins are the first chain's: test_ensaio.STAND_INS.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest
import test_ensaio as first

# How long to wait for the first chain to say it has started (both chains start within seconds of each other
# under xdist), and then for its README blocks (minutes; they include make demo).
STARTED_WAIT_S = 60
README_WAIT_S = 1800


def _adopt_or_replay(tmp_path_factory, repo, clone) -> str:
    """Make ``repo`` the state after the README: the first chain's copy if it hands one off, else the README's
    blocks run here. Returns how (for the log)."""
    folder = first.handoff_dir(tmp_path_factory)
    in_xdist = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    deadline = time.monotonic() + (STARTED_WAIT_S if in_xdist else 0)
    while not (folder / "STARTED").exists() and time.monotonic() < deadline:
        time.sleep(1)
    if (folder / "STARTED").exists():
        deadline = time.monotonic() + README_WAIT_S
        while not any((folder / m).exists() for m in ("READY", "FAILED")) and time.monotonic() < deadline:
            time.sleep(2)
    if (folder / "READY").exists():
        shutil.rmtree(repo)
        shutil.copytree(folder / "repo", repo, symlinks=True, copy_function=first._copy_or_link)
        return "handoff"
    for doc, line, code in first.BLOCKS:
        if doc == "README.md":
            first.run_block(clone, doc, line, code)
    return "replayed"


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    made = first.make_clone(tmp_path_factory.mktemp("ensaio-docs"))
    how = _adopt_or_replay(tmp_path_factory, made[0], made)
    (made[2].parent / "start.txt").write_text(f"README state: {how}\n", encoding="utf-8")
    return made


@pytest.mark.parametrize("doc,line,code", first.DOCS_CHAIN, ids=[f"{d}:{n}" for d, n, _ in first.DOCS_CHAIN])
def test_documented_block_runs_as_written(clone, doc, line, code):
    first.run_block(clone, doc, line, code)
