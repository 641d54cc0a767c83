"""Training of world models on a world-model dataset: a plain loop, TensorBoard logs, resumable checkpoints.

A run directory holds `checkpoint/` (`config.json`: the `TrainWMConfig` (read with `upgrade_wm`) and the
model's config as built from the dataset;
`weights.pt`: model and optimiser state dicts and the step, read with `torch.load(..., weights_only=True)`)
and `tb/` (TensorBoard). `--resume` continues from the checkpoint's step; `--init-from RUN` fine-tunes
another run's model (its weights and normaliser, a fresh optimiser).

    embodylab train-wm --dataset runs/data/clutter --out runs/wm --model object-centric --steps 2000
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from embodylab.world_models.baselines import (
    MonolithicConfig,
    MonolithicRSSM,
    deterministic_config,
    matched_monolithic_config,
)
from embodylab.world_models.config import MODELS, TrainWMConfig
from embodylab.world_models.data import WorldModelData, check_categories, load_dataset
from embodylab.world_models.object_centric import (
    ObjectCentricConfig,
    ObjectCentricWorldModel,
    WorldModel,
    parameter_count,
    sample_windows,
    world_model_loss,
)

CHECKPOINT_DIR = "checkpoint"
WEIGHTS = "weights.pt"
CONFIG = "config.json"


class WorldModelCheckpointError(ValueError):
    """A world-model checkpoint that is missing, unreadable or corrupt; the message names the path."""


def object_centric_config(
    config: TrainWMConfig, goal_dim: int = 3, action_dim: int = 4
) -> ObjectCentricConfig:
    """The run's `ObjectCentricConfig` with the dataset's dims; the residual latent only where it applies."""
    model = config.model_config
    residual = model.residual_latent and model.latent_dim > 0 and not model.agent_latent
    return replace(model, residual_latent=residual, goal_dim=goal_dim, action_dim=action_dim)


BEFORE_LATER_SWITCHES = {"agent_latent": True}
"""`ObjectCentricConfig` switches added after checkpoints were written, with the values that reproduce the
model those checkpoints hold (a config.json without the key loads as it was trained)"""


def build_model(kind: str, model_config: dict) -> WorldModel:
    """The world model of `kind` (one of `MODELS`) from its config dict."""
    if kind in ("object-centric", "deterministic"):
        return ObjectCentricWorldModel(ObjectCentricConfig(**{**BEFORE_LATER_SWITCHES, **model_config}))
    if kind == "monolithic":
        return MonolithicRSSM(MonolithicConfig(**model_config))
    raise ValueError(f"unknown world model {kind!r}; valid models: {', '.join(MODELS)}")


def model_config_for(config: TrainWMConfig, data: WorldModelData) -> dict:
    """The model config of the run: sizes from `config`, dims and object slots from `data`."""
    base = object_centric_config(config, data.goal.shape[-1], data.actions.shape[-1])
    if config.model not in MODELS:
        raise ValueError(f"unknown world model {config.model!r}; valid models: {', '.join(MODELS)}")
    if not 0.0 <= config.model_config.nll_beta <= 1.0:
        raise ValueError(f"nll_beta must lie in [0, 1]; got {config.model_config.nll_beta}")
    if config.model == "deterministic":
        return asdict(deterministic_config(base))
    if config.model == "monolithic":
        max_objects = config.max_objects or int(data.n_objects.max())
        return asdict(matched_monolithic_config(base, max_objects))
    return asdict(base)


def split(data: WorldModelData, val_every: int) -> tuple[WorldModelData, WorldModelData]:
    """Training and held-out episodes: every `val_every`-th episode is held out."""
    held_out = np.arange(len(data)) % val_every == val_every - 1
    return data.subset(~held_out), data.subset(held_out)


def save_checkpoint(
    run_dir: Path, config: TrainWMConfig, model_config: dict, model, optimizer, step: int
) -> Path:
    path = Path(run_dir) / CHECKPOINT_DIR
    path.mkdir(parents=True, exist_ok=True)
    meta = {"train": config.to_dict()}
    meta |= {"model_kind": config.model, "model": model_config, "step": step}
    (path / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    # Write then rename: an interrupted save never leaves a half-written checkpoint behind.
    tmp = path / (WEIGHTS + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, tmp)
    tmp.replace(path / WEIGHTS)
    return path


def read_checkpoint(run_dir: str | Path) -> tuple[dict, dict]:
    """(config.json as a dict, the weights dict) of the run at `run_dir` (or its checkpoint directory).

    Raises:
        WorldModelCheckpointError: no checkpoint there, or a config or weights file that cannot be read.
    """
    run_dir = Path(run_dir)
    path = run_dir if (run_dir / CONFIG).is_file() else run_dir / CHECKPOINT_DIR
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise WorldModelCheckpointError(
            f"no world-model checkpoint at {run_dir} (expected {path / CONFIG} and {path / WEIGHTS})"
        )
    try:
        meta = json.loads((path / CONFIG).read_text())
    except json.JSONDecodeError as err:
        raise WorldModelCheckpointError(f"{path / CONFIG} is not valid JSON: {err}") from err
    try:
        weights = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds (RuntimeError, UnpicklingError, EOFError...)
        raise WorldModelCheckpointError(f"cannot read the weights {path / WEIGHTS}: {err}") from err
    return meta, weights


LATER_BUFFERS = ("action_mean",)
"""Model buffers newer than the first checkpoints: a checkpoint without them loads with their defaults
(a zero action mean, the nominal action of `MPPIConfig.prior="zero"`)."""


def load_model_weights(model: WorldModel, state: dict[str, torch.Tensor]) -> None:
    """`model.load_state_dict(state)`, filling in the `LATER_BUFFERS` an older checkpoint lacks."""
    state = dict(state)
    for name in LATER_BUFFERS:
        state.setdefault(name, getattr(model, name))
    model.load_state_dict(state)


def load_world_model(run_dir: str | Path) -> tuple[WorldModel, dict]:
    """The trained world model of a run (in eval mode) and its config.json dict."""
    meta, weights = read_checkpoint(run_dir)
    try:
        model = build_model(meta["model_kind"], meta["model"])
        load_model_weights(model, weights["model"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise WorldModelCheckpointError(
            f"the checkpoint of {run_dir} does not fit its config: {err}"
        ) from err
    return model.eval(), meta


def train_world_model(config: TrainWMConfig) -> dict:
    """Trains the world model of `config`; returns a summary (steps, losses, throughput, parameters)."""
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(config.threads)
    data = load_dataset(config.dataset)
    check_categories(data)
    window = config.model_config.window  # steps per training window
    train_data, val_data = split(data, config.val_every)
    if not len(train_data):
        raise ValueError(
            f"{config.dataset} has {len(data)} episodes: none left for training (val_every={config.val_every})"
        )
    if config.resume:
        meta, weights = read_checkpoint(config.out)
        if meta["model_kind"] != config.model:
            raise ValueError(
                f"{config.out} holds a {meta['model_kind']} model; this run asks for {config.model}"
            )
        model_config, start = meta["model"], int(weights["step"])
    elif config.init_from is not None:
        meta, weights = read_checkpoint(config.init_from)
        if meta["model_kind"] != config.model:
            raise ValueError(
                f"{config.init_from} holds a {meta['model_kind']} model; this run asks for {config.model}"
            )
        model_config, start = meta["model"], 0
    else:
        model_config, start, weights = model_config_for(config, data), 0, None
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, start])
    model = build_model(config.model, model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if weights is not None:
        # A fine-tune keeps the normaliser it starts from: the model's inputs keep their meaning.
        load_model_weights(model, weights["model"])
        if config.resume:
            optimizer.load_state_dict(weights["optimizer"])
    else:
        model.set_normalizer(sample_windows(train_data, 1024, window, rng))
    run_dir = Path(config.out)
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=start)
    bar = tqdm(range(start, config.steps), desc=f"train-wm {config.model}", disable=not config.progress)
    started, metrics, samples = time.perf_counter(), {}, 0
    for step in bar:
        batch = sample_windows(train_data, config.batch_size, window, rng)
        loss, metrics = world_model_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        samples += config.batch_size * window
        if step % 25 == 0 or step == config.steps - 1:
            for name, value in metrics.items():
                writer.add_scalar(f"train/{name}", value, step)
            writer.add_scalar("train/loss", float(loss.detach()), step)
            bar.set_postfix(loss=f"{float(loss.detach()):.2f}", obj_nll=f"{metrics['objects_nll']:.2f}")
        if (step + 1) % config.checkpoint_every == 0:
            save_checkpoint(run_dir, config, model_config, model, optimizer, step + 1)
    elapsed = time.perf_counter() - started
    final_step = max(config.steps, start)
    save_checkpoint(run_dir, config, model_config, model, optimizer, final_step)
    val_loss = None
    if len(val_data) and (val_data.lengths >= window).any():
        with torch.no_grad():
            val_batch = sample_windows(val_data, 256, window, np.random.default_rng(0))
            val_loss = float(world_model_loss(model, val_batch)[0])
        writer.add_scalar("val/loss", val_loss, final_step)
    writer.close()
    return {
        "run_dir": str(run_dir),
        "model": config.model,
        "steps": final_step,
        "parameters": parameter_count(model),
        "train_time_s": round(elapsed, 1),
        "samples_per_s": round(samples / elapsed, 1) if elapsed > 0 else None,
        "final_metrics": metrics,
        "val_loss": val_loss,
        "train_episodes": len(train_data),
        "val_episodes": len(val_data),
    }
