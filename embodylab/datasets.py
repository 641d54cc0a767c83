"""Local Minari datasets: writing episode buffers under a folder of the user's choice.

Minari keeps datasets under `$MINARI_DATASETS_PATH` (by default the user's home); embodylab's datasets
live where a command's `--out` says, so every write goes through `write_local_dataset`.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _minari_root(root: Path):
    """Minari writes under `$MINARI_DATASETS_PATH`; point it at `root` for the duration."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def write_local_dataset(root: str | Path, dataset_id: str, buffers: list[dict], **metadata) -> Path:
    """Write `buffers` as the Minari dataset `dataset_id` under `root` (not the user's Minari home) and
    return its `data/` directory. `metadata` goes to `minari.create_dataset_from_buffers`."""
    import minari

    root = Path(root).resolve()
    with _minari_root(root), warnings.catch_warnings():
        # Minari asks for a code link and an e-mail address for published datasets, and an env spec that
        # datasets mixing task variants (object counts) cannot have; these datasets are local.
        warnings.filterwarnings("ignore", message=".*(code_permalink|author_email|eval_env|env_spec).*")
        minari.create_dataset_from_buffers(dataset_id, buffers, author="embodylab", **metadata)
    return root / dataset_id / "data"
