"""The training config of world models (torch-free, so that the `embodylab` command loads fast)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MODELS = ("object-centric", "deterministic", "monolithic")


@dataclass
class TrainWMConfig:
    """Train a world model (object-centric, its deterministic ablation, or the monolithic RSSM)."""

    dataset: Path = Path("runs/data")
    """Minari dataset written by `embodylab collect` (a root holding one dataset, or its directory)"""
    out: Path = Path("runs/wm")
    """run directory: checkpoint/, tb/"""
    model: Literal["object-centric", "deterministic", "monolithic"] = "object-centric"
    steps: int = 2000
    """gradient steps"""
    batch_size: int = 64
    """windows per gradient step"""
    lr: float = 1e-3
    d_model: int = 64
    """object-centric token width; the monolithic RSSM's width is matched to the object-centric parameter count"""
    n_layers: int = 1
    latent_dim: int = 8
    window: int = 16
    """steps per training window"""
    context: int = 4
    """teacher-forced steps at the start of each window"""
    agent_latent: bool = False
    """object-centric model: the agent token has a stochastic latent too (False: only the objects do; see
    `ObjectCentricConfig.agent_latent`)"""
    absolute_positions: bool = False
    """object-centric models: object tokens also see absolute x, y (the ablation of translation equivariance)"""
    nll_beta: float = 0.0
    """β of the β-NLL of the predicted changes, every model (0: the plain Gaussian NLL; see
    `ObjectCentricConfig.nll_beta`)"""
    max_objects: int = 0
    """object slots of the monolithic RSSM (0: the most objects in a scene of the dataset)"""
    val_every: int = 10
    """every this many episodes of the dataset is held out of training (episode index % val_every == val_every - 1)"""
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 1
    """torch CPU threads"""
    resume: bool = False
    """continue the run in `out` from its checkpoint"""
    init_from: Path | None = None
    """fine-tune: start from the weights and normaliser of this run's checkpoint (its model config; a fresh
    optimiser and step count), e.g. on a dataset grown by the planner's own episodes (`plan-wm --record`)"""
    progress: bool = True
