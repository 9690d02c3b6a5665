"""The Nextflow launcher and the environment of its tasks, for the workflow tests."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT

#: this venv's bin folder (python, cfrna): first on the PATH of Nextflow's tasks
VENV_BIN = Path(sys.executable).parent


def nextflow_bin() -> str:
    """The Nextflow launcher; skip when absent locally, fail under CI=true."""
    local = ROOT / "tools" / "nextflow" / "bin" / "nextflow"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("nextflow")
    if found:
        return found
    msg = "Nextflow is not installed (run scripts/install_nextflow.sh)"
    if IN_CI:
        pytest.fail(f"CI=true: {msg}")
    pytest.skip(msg)


def task_env() -> dict[str, str]:
    """Environment for Nextflow and its tasks: this venv's python/cfrna first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env.setdefault("NXF_OFFLINE", "true")
    env["NXF_ANSI_LOG"] = "false"
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    return env
