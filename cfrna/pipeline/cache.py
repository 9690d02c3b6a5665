"""Resume bookkeeping: a step is skipped when its outputs exist and its inputs and parameters are unchanged.

A step's key hashes its parameters and, for each input file, its path, size and modification time
(as Nextflow's default cache). Outputs are written atomically, so an output that exists is complete;
the stamp is written after the outputs, so a step killed half-way is simply run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cfrna.io.atomic import write_json
from cfrna.pipeline.layout import OutputLayout


def file_identity(path: str | os.PathLike) -> list:
    p = Path(path)
    st = p.stat()
    return [str(p.resolve()), st.st_size, st.st_mtime_ns]


def step_key(inputs: Iterable[str | os.PathLike | None], params: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for f in inputs:
        if f is None:
            continue
        h.update(json.dumps(file_identity(f)).encode())
    return h.hexdigest()


class StepCache:
    """Stamps under ``<outdir>/pipeline_info/.stamps``."""

    def __init__(self, outdir: str | os.PathLike, *, enabled: bool):
        self.dir = OutputLayout(outdir).stamps_dir
        self.enabled = enabled

    def _stamp(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def is_done(self, name: str, key: str, outputs: Iterable[str | os.PathLike]) -> bool:
        if not self.enabled:
            return False
        stamp = self._stamp(name)
        if not stamp.exists():
            return False
        try:
            rec = json.loads(stamp.read_text())
        except (OSError, ValueError):
            return False
        return rec.get("key") == key and all(Path(o).exists() for o in outputs)

    def mark(self, name: str, key: str, outputs: Iterable[str | os.PathLike]) -> None:
        write_json(self._stamp(name), {"key": key, "outputs": [Path(o).name for o in outputs]})

    def run_step(self, step: str, sample: str, inputs: Iterable, params: dict, outputs: list,
                 fn: Callable[[], object], trace: list[dict]) -> bool:
        """Run ``fn`` unless the step is done; append its trace record; True when it ran."""
        name = f"{step}.{sample}" if sample else step
        key = step_key(inputs, params)
        t0 = time.time()
        if self.is_done(name, key, outputs):
            trace.append({"step": step, "sample": sample, "status": "CACHED", "seconds": 0.0})
            return False
        fn()
        self.mark(name, key, outputs)
        trace.append({"step": step, "sample": sample, "status": "COMPLETED", "seconds": round(time.time() - t0, 3)})
        return True
