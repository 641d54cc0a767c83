"""What every benchmark records beside its numbers: the machine, the versions, the date."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np

import embodylab


def machine_info() -> dict:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "embodylab": embodylab.__version__,
    }


def write_json(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def worker_pool(workers: int):
    """A pool of `workers` fresh interpreters (spawned: no inherited threads or torch state), or None for
    one worker (the caller's process does the work). Use as `with pool or contextlib.nullcontext()`."""
    if workers == 1:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
