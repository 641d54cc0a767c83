"""Checkpoints of an SB3 run that resume without pickle: `checkpoints/step_<N>/` holds

- `model.zip`   SB3's archive; only its weights are read back (`torch.load(weights_only=True)` inside
                SB3's `load_from_zip_file`), the model itself is rebuilt from the run's config.json;
- `buffer.npz`  the filled part of the replay buffer, one array per field, read with `allow_pickle=False`;
- `state.json`  step and episode counters and the buffer's bookkeeping (`pos`, `full`, array shapes).

A checkpoint is written into a temporary directory and renamed into place, so a run killed mid-write
leaves the previous checkpoint intact; the newest `KEEP` are kept.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.her import HerReplayBuffer

KEEP = 2
_STEP_DIR = re.compile(r"^step_(\d+)$")
# HER's episode bookkeeping: which transitions form which episode, so that relabelling stays in-episode.
_HER_ARRAYS = ("ep_start", "ep_length")


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated or does not fit the run; the message names the file."""


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoint directories, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path:
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise CheckpointError(f"no checkpoint in {Path(run_dir) / 'checkpoints'}")
    return checkpoints[-1]


# ---- replay buffer <-> arrays -------------------------------------------------------------------------
def _buffer_arrays(buffer: ReplayBuffer) -> dict[str, np.ndarray]:
    """The filled rows of every array of `buffer`, keyed `observations.<key>`, `actions`, ..."""
    size = buffer.size()
    arrays: dict[str, np.ndarray] = {}
    for name in ("observations", "next_observations"):
        value = getattr(buffer, name)
        if isinstance(value, dict):
            arrays.update({f"{name}.{key}": array[:size] for key, array in value.items()})
        else:
            arrays[name] = value[:size]
    for name in ("actions", "rewards", "dones", "timeouts"):
        arrays[name] = getattr(buffer, name)[:size]
    if isinstance(buffer, HerReplayBuffer):
        arrays.update({name: getattr(buffer, name)[:size] for name in _HER_ARRAYS})
        arrays["_current_ep_start"] = buffer._current_ep_start
    return arrays


def _restore_buffer(buffer: ReplayBuffer, path: Path, state: dict) -> None:
    """Fills `buffer` from `buffer.npz` written by `_buffer_arrays`, checking every key and shape."""
    expected = {name: array.shape[1:] for name, array in _buffer_arrays(buffer).items()}
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as err:  # numpy parses a corrupt header with ast: SyntaxError, TokenError, ValueError...
        raise CheckpointError(f"{path} is unreadable (truncated or corrupt?): {err!r}") from err
    missing = sorted(set(expected) - set(arrays))
    if missing:
        raise CheckpointError(f"{path} lacks the arrays {missing}")
    size = state["size"]
    if size > buffer.buffer_size:
        raise CheckpointError(f"{path} holds {size} transitions; the run's buffer holds {buffer.buffer_size}")
    for name, tail in expected.items():
        rows = buffer.n_envs if name == "_current_ep_start" else size
        if arrays[name].shape != (rows, *tail):
            raise CheckpointError(
                f"{path}: array {name!r} has shape {arrays[name].shape}; expected {(rows, *tail)}"
            )

    for name, array in arrays.items():
        if name == "_current_ep_start":
            buffer._current_ep_start[:] = array
        elif "." in name:
            group, key = name.split(".", 1)
            getattr(buffer, group)[key][:size] = array
        else:
            getattr(buffer, name)[:size] = array
    buffer.pos, buffer.full = state["pos"], state["full"]


# ---- save and load ------------------------------------------------------------------------------------
def save_checkpoint(model: BaseAlgorithm, run_dir: str | Path) -> Path:
    """Writes `checkpoints/step_<num_timesteps>/` atomically and prunes all but the newest `KEEP`."""
    final = checkpoint_dir(Path(run_dir), model.num_timesteps)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip", exclude=["replay_buffer", "env", "eval_env"])
    state = {"num_timesteps": model.num_timesteps, "episode_num": getattr(model, "_episode_num", 0)}
    buffer = getattr(model, "replay_buffer", None)
    if buffer is not None:
        np.savez(tmp / "buffer.npz", **_buffer_arrays(buffer))
        size = buffer.size()
        state["buffer"] = {
            "class": type(buffer).__name__,
            "pos": buffer.pos,
            "full": buffer.full,
            "size": size,
        }
    (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)  # a re-save at the same step (the final save of a run)
    tmp.rename(final)
    for old in list_checkpoints(run_dir)[:-KEEP]:
        shutil.rmtree(old)
    return final


def load_checkpoint(model: BaseAlgorithm, checkpoint: Path, *, restore_buffer: bool = True) -> dict:
    """Loads weights, optimiser states, counters and (optionally) the replay buffer of `checkpoint` into
    `model`, which must be built from the same config. Returns the checkpoint's `state.json`.

    Raises:
        CheckpointError: a missing, truncated or mismatching file, named in the message.
    """
    checkpoint = Path(checkpoint)
    state_path, model_path = checkpoint / "state.json", checkpoint / "model.zip"
    try:
        state = json.loads(state_path.read_text())
        num_timesteps = int(state["num_timesteps"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{state_path} is missing or corrupt: {err}") from err
    try:
        _, params, variables = load_from_zip_file(model_path, load_data=False, device=model.device)
        model.set_parameters(params, exact_match=True, device=model.device)
    except (OSError, ValueError, RuntimeError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{model_path} is unreadable or does not fit the run's model: {err}") from err
    for name, value in (variables or {}).items():  # e.g. SAC's log_ent_coef, a bare tensor
        target = model
        *parents, leaf = name.split(".")
        for parent in parents:
            target = getattr(target, parent)
        getattr(target, leaf).data.copy_(value.data)
    model.num_timesteps = num_timesteps
    model._episode_num = int(state.get("episode_num", 0))
    buffer = getattr(model, "replay_buffer", None)
    if restore_buffer and buffer is not None:
        if "buffer" not in state:
            raise CheckpointError(f"{state_path} has no replay buffer state; the run's algorithm needs one")
        _restore_buffer(buffer, checkpoint / "buffer.npz", state["buffer"])
        if isinstance(buffer, HerReplayBuffer) and (buffer._current_ep_start != buffer.pos).any():
            # Saved mid-episode: the resumed run starts a new episode, so close the partial one.
            buffer.truncate_last_trajectory()
    return state
