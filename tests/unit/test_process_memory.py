"""engine/process_memory.py: the scheduler's processes cap glibc's malloc arenas, unless the
operator set MALLOC_ARENA_MAX themselves (the growth it prevents is measured by
`pdcaflow bench scheduler-memory`)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from engine.process_memory import limit_malloc_arenas

ROOT = Path(__file__).resolve().parents[2]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_arenas_are_capped_in_a_fresh_process():
    code = "from engine.process_memory import limit_malloc_arenas as f; print(f())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(env, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "True"


def test_an_operators_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
