"""The configs of world models and of their training, and their values (torch-free, so that the `embodylab`
command loads fast). `TrainWMConfig` holds the model's `ObjectCentricConfig` (`model_config`); a run's
checkpoint/config.json records both (`"train"`, with a `version`), and `upgrade_wm` reads the flat training
configs of version 0 too."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

import tyro

MODELS = ("object-centric", "deterministic", "monolithic")
WM_CONFIG_VERSION = 1
"""`TrainWMConfig.version` of the configs this code writes. 0: the model's fields flat in the training config."""


@dataclass
class ObjectCentricConfig:
    """Sizes and loss weights of the object-centric world model."""

    d_model: int = 64
    """token width"""
    n_heads: int = 4
    n_layers: int = 2
    """transformer layers mixing the tokens of one step"""
    latent_dim: int = 8
    """Gaussian latent per token; 0 is the deterministic ablation"""
    agent_latent: bool = False
    """the agent token has a latent too (the model before this switch; checkpoints without it load with
    True). False: only object tokens do (the agent's latent is held at zero and its KL is not counted): the
    arm's response to its command is deterministic, and a latent the posterior fills with the observed tool
    motion (up to `free_bits` nats of it for free) is one the prior cannot predict open-loop (measured: docs/experiments.md,
    "World-model switches")"""
    action_dim: int = 4
    goal_dim: int = 3
    free_bits: float = 1.0
    """nats per token below which the KL is not penalised (DreamerV3)"""
    kl_dyn: float = 2.0
    """weight of KL(sg(q) || p): trains the prior towards the posterior"""
    kl_rep: float = 1.0
    """weight of KL(q || sg(p)): keeps the posterior close to the prior. DreamerV3's 0.5 / 0.1 let the
    posterior, which sees the observed change, carry all of it for 0.1 nat per nat; the prior lagged and
    open-loop predictions of the agent were worse than the deterministic ablation's (1.7 cm vs 1.0 cm
    one-step error on LabPush). At 1.0 a nat in the latent costs what it can save, and the balance stays 2:1."""
    reward_weight: float = 1.0
    success_weight: float = 0.1
    context: int = 4
    """teacher-forced steps at the start of each training window"""
    window: int = 20
    """steps per training window (context plus open-loop)"""
    nll_beta: float = 0.0
    """β of the β-NLL (Seitzer et al. 2022) of the decoded changes: each dimension's negative log-likelihood
    is weighted by its predicted variance to the power β (no gradient through the weight). 0 is the plain
    Gaussian NLL, under which a hard-to-predict change (a push) can be explained by a wider std instead of a
    better mean; 1 gives the mean the gradient of a squared error."""
    prior_rollout: bool = False
    """open-loop training steps (after the context) roll on, and are also scored by, the prediction decoded
    from the prior's mean latent, as an open-loop evaluation or a planner rolls: the NLL of that prediction is
    added to the ELBO's, whose prediction decodes the posterior's sample. False: the rollout follows the
    posterior's sample, which has seen the true next state (with the open-loop error it corrects), so
    training never sees the drift of the latent the prior predicts. Off for the deterministic ablation (no
    latent; the two paths are one)"""
    true_change_posterior: bool = False
    """the posterior reads the true change from the true state (the step's own randomness) instead of the
    change from where the model stands, which after the context is the rolled prediction: that change also
    holds the open-loop error to correct, which a latent the prior cannot predict then carries. The decoder's
    target is the change from where the model stands either way. Off: the model before this switch; it
    stays off, as it did not beat the deterministic ablation (docs/experiments.md, "World-model switches")"""
    residual_latent: bool = False
    """the latent decodes a residual over a deterministic path instead of entering the one decoder. The
    recurrent trunk (encoders, mixer, GRU) and its decoders are trained exactly as the deterministic ablation
    is: the Gaussian NLL of their own prediction, rolled open-loop on it. A separate head, with the trunk's
    state and inputs read without gradient, holds the latent: its prior p(z | h), its posterior q(z | h,
    residual) reading the change the deterministic path left unexplained, and a decoder of that residual,
    trained on the ELBO. A sample's change is the deterministic change plus its decoded residual; the
    single prediction decodes the prior's mean. Open-loop rollouts (`open_loop`, the planner; `advance`)
    roll on the deterministic path, as training does, and read each step's residual out on top of it: the
    residual is the true state's deviation from that path, so rolling on it would count it again.
    Without it one decoder reads the latent beside the state (the model before this switch, still the
    default here so that checkpoints load as trained; `training_model_config` turns it on; the measurements
    in docs/experiments.md, "World-model switches"). The agent's arm stays deterministic (`agent_latent` must be off); `prior_rollout` does not apply (training
    rolls on the deterministic path)"""
    absolute_positions: bool = False
    """object tokens also see their absolute table-plane position (x, y). Off by default: pushing and
    collisions look the same anywhere on the table, so an object's change is a function of where it lies
    relative to the tool centre point and to the other objects (whose differences the mixer forms from the
    tcp-relative positions), not of where it lies. Without x, y the object encoder is translation-
    equivariant and what it learns at one place holds at every other; with them it must learn each place
    from the data there. True is the ablation (the model before this change)."""


def training_model_config() -> ObjectCentricConfig:
    """The model `embodylab train-wm` trains unless told otherwise: one transformer layer, 16-step windows,
    prior-mean rollouts and the residual latent, the rest `ObjectCentricConfig`'s defaults (which stay as
    they are so that checkpoints written before a switch load as trained)."""
    return ObjectCentricConfig(n_layers=1, window=16, prior_rollout=True, residual_latent=True)


@dataclass
class TrainWMConfig:
    """Train a world model (object-centric, its deterministic ablation, or the monolithic RSSM)."""

    dataset: Path = Path("runs/data")
    """Minari dataset written by `embodylab collect` (a root holding one dataset, or its directory)"""
    out: Path = Path("runs/wm")
    """run directory: checkpoint/, tb/"""
    model: Literal["object-centric", "deterministic", "monolithic"] = "object-centric"
    model_config: tyro.conf.OmitArgPrefixes[ObjectCentricConfig] = field(
        default_factory=training_model_config
    )
    """the object-centric model's sizes and switches (its flags without a prefix: --d-model, --window...).
    The deterministic ablation and the monolithic RSSM are derived from it (`deterministic_config`,
    `matched_monolithic_config`: the RSSM's width matches the object-centric parameter count). `goal_dim`
    and `action_dim` are the dataset's; `residual_latent` is not taken with `agent_latent` or `latent_dim`
    0, which leave it off"""
    steps: int = 2000
    """gradient steps"""
    batch_size: int = 64
    """windows per gradient step"""
    lr: float = 1e-3
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
    version: tyro.conf.Suppress[int] = WM_CONFIG_VERSION
    """the config format (`WM_CONFIG_VERSION`); `upgrade_wm` reads older ones"""

    def to_dict(self) -> dict:
        """The config as JSON-ready values (paths as strings), nested like the dataclasses."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


V0_MODEL_FIELDS = (
    "d_model", "n_layers", "latent_dim", "window", "context", "agent_latent", "prior_rollout",
    "true_change_posterior", "residual_latent", "absolute_positions", "nll_beta",
)  # fmt: skip
"""The model's fields that a version-0 `TrainWMConfig` held flat (with `training_model_config`'s values)."""


def upgrade_wm(train: dict) -> TrainWMConfig:
    """The `TrainWMConfig` of a checkpoint's `"train"` dict, of any version: nested (`WM_CONFIG_VERSION`)
    or flat (version 0, no `version` key: the model's fields beside the training's).

    Raises:
        ValueError: a key that no version has, or a version newer than this code's."""
    data = dict(train)
    version = data.pop("version", 0)
    if version == 0:
        model = {k: data.pop(k) for k in V0_MODEL_FIELDS if k in data}
        data["model_config"] = asdict(replace(training_model_config(), **model))
    elif version != WM_CONFIG_VERSION:
        raise ValueError(
            f"world-model config version {version} is newer than this code's ({WM_CONFIG_VERSION})"
        )
    model = data.pop("model_config", {})
    unknown = sorted(set(data) - {f.name for f in fields(TrainWMConfig)})
    unknown += sorted(f"model_config.{k}" for k in set(model) - {f.name for f in fields(ObjectCentricConfig)})
    if unknown:
        raise ValueError(f"world-model config has unknown keys {unknown}")
    for key in ("dataset", "out", "init_from"):
        if data.get(key) is not None:
            data[key] = Path(data[key])
    return TrainWMConfig(**data, model_config=ObjectCentricConfig(**model))


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
