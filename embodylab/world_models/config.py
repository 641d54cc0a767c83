"""The training configs of world models and their values (torch-free, so that the `embodylab` command loads fast)."""

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
    prior_rollout: bool = True
    """stochastic models: open-loop training steps roll on the prediction decoded from the prior's mean latent,
    as evaluation and planning do, and score it beside the ELBO's (see `ObjectCentricConfig.prior_rollout`;
    False: the loss before 2026-12-07, whose rollouts followed the posterior)"""
    true_change_posterior: bool = False
    """stochastic models: the posterior reads the true change from the true state, not the change from the
    rolled prediction with its open-loop error (see `ObjectCentricConfig.true_change_posterior`)"""
    residual_latent: bool = True
    """object-centric model: the latent decodes a residual over a deterministic path trained as the ablation is
    (see `ObjectCentricConfig.residual_latent`: best-of-8@25 31.1 mm against the ablation's 32.1 over 3 seeds,
    33.0 without). Not taken with `agent_latent` or `latent_dim 0`, which leave it off"""
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


@dataclass
class TrainValueConfig:
    """Fit a state value to a world-model dataset's discounted returns (`embodylab.world_models.value`)."""

    dataset: Path = Path("runs/data")
    """world-model dataset written by `embodylab collect` (a root holding one dataset, or its directory)"""
    out: Path = Path("runs/value")
    """directory to write value.json and value.pt to"""
    discount: float | None = None
    """gamma of the returns; None: TD-MPC2's heuristic from the dataset's episode length (0.95 for 100 steps)"""
    reward_baseline: bool = True
    """learn the return less the state's own reward held for ever, r(s) / (1 - gamma), and let the planner
    add that back from the world model's reward read-out: the value then learns only what the future adds
    (a small, smooth correction), and the plan's score keeps the reward's precision near the goal"""
    expectile: float = 0.9
    """the value fits this expectile of the returns (0.5: their mean, the value of the data's policy).
    Above 0.5 it leans towards the better futures the data holds from a state, as IQL's expectile value
    does (Kostrikov et al. 2022): the noisy experts' luckier continuations rather than their average"""
    hidden: int = 128
    category_dim: int = 8
    steps: int = 3000
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_every: int = 10
    """every `val_every`-th episode is held out (its loss is reported, never trained on)"""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.discount is not None and not 0.0 <= self.discount < 1.0:
            raise ValueError(f"discount must be in [0, 1); got {self.discount}")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"expectile must be in (0, 1); got {self.expectile}")
        for name in ("hidden", "category_dim", "steps", "batch_size", "val_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)}")
