"""Configs of an RL run: `TrainConfig` (what to train, for how long, where) holding one algorithm's config.

The algorithm is a union of per-algorithm dataclasses (`Sac`, `Td3`, `Tqc`, `Ppo`), each with only its own
hyperparameters; Hindsight Experience Replay (`Her`) and demonstrations (`Demos`, `SacDemos`) are
sub-configs of the algorithms that implement them. An option of one algorithm given to another cannot be
written down, so `TrainConfig.validate` checks ranges (and the two replay buffers that are not implemented).

On the command line the union and the optional sub-configs are tyro subcommands, the options of each
given after it or anywhere later:

    embodylab train sac her --env LabReach --steps 20000 --out runs/reach
    embodylab train sac her demos --record 20 --ibrl --env LabPush --steps 50000 --out runs/push
    embodylab train ppo --env LabReach --n-steps 512 --out runs/ppo

Plain dataclasses with no torch or SB3 import, so that the CLI can build its parser from them cheaply.
A run writes its config to `runs/NAME/config.json` (`TrainConfig.to_json`, with a `version`);
`load_config(run_dir)` re-creates it, also from the flat config.json of version 0 (`upgrade`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import tyro

CONFIG_VERSION = 1
"""`TrainConfig.version` of the configs this code writes. 0: the flat config (`algo`, `her`, `demos`,
`demo_dataset`, `curriculum*` and one `algo_config` holding every algorithm's options), read by `upgrade`."""
CURRICULA = ("ucb", "gradient", "thompson", "uniform")


class ConfigError(ValueError):
    """A training config that cannot run; the message names the bad value and the valid choices."""


@dataclass
class Her:
    """Hindsight Experience Replay: goal-conditioned observations, sparse goal rewards (unless
    `TrainConfig.reward_type` says otherwise) and relabelled goals in the replay buffer."""

    n_sampled_goal: int = 4
    """relabelled goals per real transition (a relabelled fraction of 4/5)."""
    goal_selection_strategy: Literal["future", "final", "episode"] = "future"
    energy_priority: bool = False
    """replay episodes in proportion to how much the achieved goal (an object) gained energy in them
    (Zhao & Tresp 2018; `embodylab.policies.energy_priority`), instead of uniformly."""


@dataclass
class Demos:
    """Learning from expert demonstrations: the replay batches draw demonstration and online transitions
    symmetrically (`embodylab.policies.demos`). Give `record` or `dataset`."""

    record: int = 0
    """record this many expert episodes into the run's demos/ (a Minari dataset) and learn from them"""
    dataset: str | None = None
    """Minari dataset directory to read the demonstrations from (instead of recording them)"""
    reset_prob: float | None = None
    """chance that a training episode starts from a state along a demonstration instead of the task's own
    start (Nair et al. 2018; `embodylab.policies.demo_resets`); evaluation always starts normally. None:
    `DEFAULT_DEMO_RESET_PROB` (the value used is written to config.json). Needs an embodylab env and demos
    recorded with their seeds."""


@dataclass
class SacDemos(Demos):
    """SAC's demonstrations: also a Q-filtered behaviour-cloning loss and imitation-bootstrapped RL."""

    bc_weight: float | None = None
    """weight of the Q-filtered behaviour-cloning loss on the demonstration rows (`embodylab.policies.bc`);
    None: `DEFAULT_BC_WEIGHT`. 0 turns it off (symmetric sampling only)."""
    bc_q_alpha: float | None = None
    """None leaves the actor's SAC term as it is; a value α scales it by α / mean |Q| over the batch, as
    TD3+BC does (Fujimoto & Gu 2021: α 2.5), so that `bc_weight` is relative to Q's scale."""
    ibrl: bool = False
    """imitation-bootstrapped RL (Hu et al. 2023; `embodylab.policies.ibrl`). A policy cloned from the
    demonstrations before training proposes an action beside the actor's, and the critic picks the better
    of the two, both for the executed action and in the TD target."""
    ibrl_bc_updates: int = 5000
    """with `ibrl`: Adam updates (minibatches of 256) that fit the cloned policy to the demonstrations"""
    ibrl_bc_hidden: int = 256
    """with `ibrl`: width of the cloned policy's two hidden layers"""


DEFAULT_BC_WEIGHT = 1.0
"""`SacDemos.bc_weight` of a run that leaves it None (see bc.py)."""
DEFAULT_DEMO_RESET_PROB = 0.0
"""`Demos.reset_prob` of a run that leaves it None: off, as it showed no clear gain on LabPush
(docs/experiments.md, "Starts from demonstration states")."""

HerOption = Annotated[Her, tyro.conf.subcommand("her")] | Annotated[None, tyro.conf.subcommand("no-her")]
DemosOption = (
    Annotated[Demos, tyro.conf.subcommand("demos")] | Annotated[None, tyro.conf.subcommand("no-demos")]
)
SacDemosOption = (
    Annotated[SacDemos, tyro.conf.subcommand("demos")] | Annotated[None, tyro.conf.subcommand("no-demos")]
)


@dataclass
class _Algorithm:
    """Hyperparameters every algorithm has, handed to SB3. The defaults are tuned for the lab tasks on a
    2-core CPU: 64x64 networks with one update per env step, observation normalisation and relative goal
    features (README, "Training"; the measurements in docs/experiments.md, "Training defaults"). Fields
    left None are filled per task by `resolved` from `TASK_PRESETS`."""

    name: ClassVar[str]
    learning_rate: float = 1e-3
    batch_size: int = 256
    net_arch: tuple[int, ...] = (64, 64)
    """hidden layer sizes of the actor and of each critic (PPO: of the policy and the value network)."""
    gamma: float | None = None
    """discount; None: the task's preset (`TASK_PRESETS`): 0.95 for LabReach, 0.98 where an object has to
    be moved, whose expert solutions take 40-60 steps (γ^50 is 0.08 at 0.95, 0.36 at 0.98)."""
    normalize_obs: bool = True
    """standardise observations and goals with running statistics, clipped to ±5, inside the networks
    (`embodylab.policies.normalization`), as DDPG+HER does."""
    relative_goals: bool = True
    """with normalize_obs and 3-D position goals: also feed the networks desired - achieved goal and both
    goals relative to the gripper (see `RunningNormExtractor`)."""
    torch_threads: int = 1
    """torch intra-op threads. One: two gain nothing for 64x64 networks on 2 cores and cost much when the
    other core is busy (docs/experiments.md, "Training defaults")."""

    def resolved(self, env_id: str) -> _Algorithm:
        """This config with every None field filled: `gamma` from the preset of `env_id` (full id), the
        demonstrations' `reset_prob` from `DEFAULT_DEMO_RESET_PROB`."""
        preset = {**DEFAULT_PRESET, **TASK_PRESETS.get(env_id, {})}
        config = replace(self, **{k: v for k, v in preset.items() if getattr(self, k) is None})
        demos = getattr(config, "demos", None)
        if demos is not None and demos.reset_prob is None:
            config = replace(config, demos=replace(demos, reset_prob=DEFAULT_DEMO_RESET_PROB))
        return config


@dataclass
class _OffPolicy(_Algorithm):
    """What the off-policy algorithms share: the replay buffer, its updates, HER and demonstrations."""

    buffer_size: int | None = None
    """replay capacity in transitions; None keeps every transition of the run (`steps`)."""
    learning_starts: int = 1000
    """env steps of uniform random actions before the first update."""
    train_freq: int = 50
    """env steps between two rounds of updates."""
    gradient_steps: int = 50
    """updates per round: one per env step (half that: the same wall time for worse sample efficiency,
    docs/experiments.md, "Training defaults")."""
    tau: float = 0.005
    """Polyak factor of the target networks."""
    random_action_prob: float = 0.0
    """chance that a training step's action is drawn uniformly from the action space instead of the
    policy's (DDPG+HER's 0.3; `embodylab.policies.exploration`); evaluation never does."""
    n_step_return: int = 1
    """rewards summed over this many steps before the critic's target bootstraps, γⁿ then
    (`embodylab.policies.nstep_her`; 1: one-step targets). Not PPO's `n_steps`. A sparse goal reward then
    travels n transitions back per update instead of one; the later n - 1 actions are the behaviour
    policy's, so the target leans towards its value. Implemented with HER (without energy priority) and
    for plain replay without demonstrations."""
    her: HerOption = None
    """Hindsight Experience Replay (None: the env's plain observations)"""
    demos: DemosOption = None
    """learning from demonstrations (None: none)"""


@dataclass
class Sac(_OffPolicy):
    """Soft Actor-Critic (SB3; with demonstrations or `action_l2`, `embodylab.policies.bc.DemoSAC`)."""

    name: ClassVar[str] = "sac"
    demos: SacDemosOption = None
    """learning from demonstrations, with SAC's behaviour cloning and IBRL (None: none)"""
    ent_coef: float | None = None
    """a fixed entropy coefficient α; None learns α towards SB3's target entropy (minus the action
    dimensions), which on LabPush falls to ~0.004 and leaves exploration to `random_action_prob`."""
    critic_layer_norm: bool = False
    """LayerNorm after every hidden layer of the critics, as in RLPD (`embodylab.policies.critic_norm`)."""
    action_l2: float = 0.0
    """weight of the squared-action penalty in the actor loss (DDPG+HER's `action_l2`, 1.0 there;
    `embodylab.policies.bc.DemoSAC`): where the critic has nothing to say, the policy's actions stay small."""


@dataclass
class Td3(_OffPolicy):
    """TD3 (SB3) with Gaussian exploration noise (`embodylab.policies.factory.TD3_ACTION_NOISE`)."""

    name: ClassVar[str] = "td3"


@dataclass
class Tqc(_OffPolicy):
    """Truncated Quantile Critics (sb3-contrib): distributional critics, the top quantiles dropped."""

    name: ClassVar[str] = "tqc"
    ent_coef: float | None = None
    """a fixed entropy coefficient α; None learns it, as SAC's `ent_coef`."""


@dataclass
class Ppo(_Algorithm):
    """PPO (SB3), on-policy: no replay buffer, hence neither HER nor demonstrations."""

    name: ClassVar[str] = "ppo"
    n_steps: int = 1024
    """env steps per rollout (its minibatches are `batch_size`)."""


ALGORITHMS: dict[str, type[_Algorithm]] = {c.name: c for c in (Sac, Td3, Tqc, Ppo)}
Algorithm = (
    Annotated[Sac, tyro.conf.subcommand("sac")]
    | Annotated[Td3, tyro.conf.subcommand("td3")]
    | Annotated[Tqc, tyro.conf.subcommand("tqc")]
    | Annotated[Ppo, tyro.conf.subcommand("ppo")]
)

DEFAULT_PRESET: dict[str, object] = {"gamma": 0.98}
"""Algorithm values for the fields left None, for tasks without an entry in `TASK_PRESETS`."""
TASK_PRESETS: dict[str, dict[str, object]] = {
    # Reach is solved in ~10k steps at 0.95 (README, "Training"); the short horizon needs no more.
    "embodylab/LabReach-v0": {"gamma": 0.95},
}
"""Per-task algorithm values for the fields left None, by full env id."""


@dataclass
class Curriculum:
    """A bandit curriculum over task variants (`embodylab.policies.curriculum`); evaluation always runs the
    unchanged task."""

    bandit: Literal["ucb", "gradient", "thompson", "uniform"] = "ucb"
    """how the next episode's variant is chosen; `uniform` samples the variants uniformly, the baseline a
    curriculum is compared with"""
    variants: str = "default"
    """which family of the task's variants the curriculum chooses among; `default`: the task's own choice.
    LabPush: `goal_distance` (the default, goal-distance bins) or `hand_start` (the hand starts 5-10 cm or
    10-20 cm from the cube, or as usual)"""
    target_share: float = 0.0
    """share of the training episodes that run the unchanged task whatever the bandit prefers (it must be
    one of the variants, as in `hand_start`); the rest the curriculum picks. A bandit chasing learning
    progress can otherwise leave the task that evaluation runs"""


CurriculumOption = (
    Annotated[Curriculum, tyro.conf.subcommand("curriculum")]
    | Annotated[None, tyro.conf.subcommand("no-curriculum")]
)


@dataclass
class TrainConfig:
    """One training run: `embodylab train sac her --env ID --steps N --seed S --out runs/NAME`."""

    env: str = "embodylab/LabReach-v0"
    """env id (the embodylab/ namespace and -v0 may be omitted)"""
    algo: Algorithm = field(default_factory=Sac)
    reward_type: Literal["auto", "sparse", "dense"] = "auto"
    """auto: sparse with HER, dense without"""
    curriculum: CurriculumOption = None
    """a curriculum over task variants for the training episodes (None: the task as it is)"""
    steps: int = 20_000
    """total env steps"""
    seed: int = 0
    out: str = "runs/train"
    """run directory: config.json, checkpoints/, tb/, evaluations.csv, videos/"""
    eval_every: int = 2000
    """env steps between evaluations (0: none)"""
    eval_episodes: int = 20
    stop_success: float = 0.0
    """stop early once evaluated success reaches this rate `stop_patience` evaluations in a row (0: never)"""
    stop_patience: int = 3
    checkpoint_every: int = 5000
    """env steps between checkpoints; the last 2 are kept"""
    video: bool = True
    """record the first episode of each evaluation"""
    progress: bool = True
    """show a progress bar"""
    resume: str | None = None
    """continue the run in this directory from its last checkpoint (its config.json is used)"""
    version: tyro.conf.Suppress[int] = CONFIG_VERSION
    """the config format (`CONFIG_VERSION`); `upgrade` reads older ones"""

    @property
    def her(self) -> Her | None:
        """The algorithm's HER config; None without HER (and for PPO)."""
        return getattr(self.algo, "her", None)

    @property
    def demos(self) -> Demos | None:
        """The algorithm's demonstrations config; None without demonstrations (and for PPO)."""
        return getattr(self.algo, "demos", None)

    @property
    def goal_reward_type(self) -> str:
        """The env's `reward_type`: sparse goal rewards with HER, dense shaping without, unless given."""
        if self.reward_type != "auto":
            return self.reward_type
        return "sparse" if self.her else "dense"

    def validate(self) -> None:
        """Raises `ConfigError` for a value out of its range, or a replay buffer that is not implemented."""
        a, demos = self.algo, self.demos
        _at_least(self, "", steps=1, eval_episodes=1, eval_every=0, checkpoint_every=0)
        _at_least(a, "algo.", torch_threads=1, batch_size=1)
        if isinstance(a, _OffPolicy):
            _at_least(a, "algo.", n_step_return=1)
            _in_unit_interval(a.random_action_prob, "algo.random_action_prob")
            if a.n_step_return > 1 and self.her and self.her.energy_priority:
                raise ConfigError("algo.n_step_return > 1 and algo.her.energy_priority cannot be combined")
            if a.n_step_return > 1 and demos and not self.her:
                raise ConfigError(
                    "algo.n_step_return > 1 with demonstrations needs HER (n-step returns are implemented "
                    "for the hindsight replay buffer with demonstrations)"
                )
        if isinstance(a, (Sac, Tqc)) and a.ent_coef is not None and not a.ent_coef > 0:
            raise ConfigError(f"algo.ent_coef must be positive (or None); got {a.ent_coef}")
        if isinstance(a, Sac) and a.action_l2 < 0:
            raise ConfigError(f"algo.action_l2 must not be negative; got {a.action_l2}")
        if demos is not None:
            if bool(demos.record) == bool(demos.dataset) or demos.record < 0:
                raise ConfigError(
                    "demonstrations need either --record N (N >= 1 expert episodes) or --dataset PATH; got "
                    f"record {demos.record}, dataset {demos.dataset!r}"
                )
            if demos.reset_prob is not None:
                _in_unit_interval(demos.reset_prob, "algo.demos.reset_prob")
        if isinstance(demos, SacDemos):
            if demos.bc_q_alpha is not None and not demos.bc_q_alpha > 0:
                raise ConfigError(f"algo.demos.bc_q_alpha must be positive (or None); got {demos.bc_q_alpha}")
            _at_least(demos, "algo.demos.", ibrl_bc_updates=1, ibrl_bc_hidden=1)
        if self.curriculum is not None:
            _in_unit_interval(self.curriculum.target_share, "curriculum.target_share")

    def to_json(self) -> str:
        """The config as JSON: nested like the dataclasses, the algorithm's `name` beside its fields."""
        data = asdict(self)
        data["algo"] = {"name": self.algo.name, **data["algo"]}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """The config that `to_json` (of this or an earlier version) wrote; see `upgrade`."""
        return upgrade(json.loads(text))


def _at_least(config: object, prefix: str, **bounds: int) -> None:
    for name, low in bounds.items():
        if getattr(config, name) < low:
            raise ConfigError(f"{prefix}{name} must be at least {low}; got {getattr(config, name)}")


def _in_unit_interval(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1]; got {value}")


# ---- reading config.json ------------------------------------------------------------------------------
def load_config(path: str | Path) -> TrainConfig:
    """The config of a run: `path` is its directory (holding config.json) or the config.json itself."""
    path = Path(path)
    file = path / "config.json" if path.is_dir() or path.suffix != ".json" else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: {path} is not a training run directory")
    return TrainConfig.from_json(file.read_text())


def upgrade(data: dict) -> TrainConfig:
    """The `TrainConfig` of a config.json's contents, of any version: the nested format of
    `CONFIG_VERSION`, or the flat format of version 0 (no `version` key), whose options of other algorithms,
    of HER without HER and of demonstrations without them had no effect and are dropped.

    Raises:
        ConfigError: a key that no version has, or a version newer than this code's."""
    data = dict(data)
    version = data.pop("version", 0)
    if version == 0:
        data = _nested_from_v0(data)
    elif version != CONFIG_VERSION:
        raise ConfigError(f"config version {version} is newer than this code's ({CONFIG_VERSION})")
    algo = dict(data.pop("algo", {"name": "sac"}))
    name = algo.pop("name", None)
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algo {name!r}; valid algos: {', '.join(ALGORITHMS)}")
    cls = ALGORITHMS[name]
    for key, sub in (("her", Her), ("demos", SacDemos if cls is Sac else Demos)):
        if algo.get(key) is not None:
            algo[key] = _build(sub, algo[key], f"algo.{key}.")
    if "net_arch" in algo:
        algo["net_arch"] = tuple(algo["net_arch"])
    if data.get("curriculum") is not None:
        data["curriculum"] = _build(Curriculum, data["curriculum"], "curriculum.")
    return _build(TrainConfig, {**data, "algo": _build(cls, algo, "algo.")}, "")


def _build(cls: type, data: dict, prefix: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(f"{prefix}{k}" for k in set(data) - known)
    if unknown:
        raise ConfigError(f"config has unknown keys {unknown}")
    return cls(**data)


V0_HER = {f.name for f in fields(Her)}
V0_DEMOS = {"demo_reset_prob": "reset_prob", "bc_weight": "bc_weight", "bc_q_alpha": "bc_q_alpha"}
V0_DEMOS |= {k: k for k in ("ibrl", "ibrl_bc_updates", "ibrl_bc_hidden")}
V0_ALGO_KEYS = {f.name for c in ALGORITHMS.values() for f in fields(c)} - {"her", "demos"}
V0_ALGO_KEYS |= V0_HER | set(V0_DEMOS)
V0_CURRICULUM = {
    "curriculum": "bandit",
    "curriculum_variants": "variants",
    "curriculum_target_share": "target_share",
}


def _nested_from_v0(flat: dict) -> dict:
    """The version-1 dict of a version-0 (flat) config.json."""
    data = dict(flat)
    options = dict(data.pop("algo_config", {}))
    unknown = sorted(f"algo_config.{k}" for k in set(options) - V0_ALGO_KEYS)
    if unknown:
        raise ConfigError(f"config has unknown keys {unknown}")
    name = data.pop("algo", "sac")
    cls = ALGORITHMS.get(name)
    if cls is None:
        raise ConfigError(f"unknown algo {name!r}; valid algos: {', '.join(ALGORITHMS)}")
    own = {f.name for f in fields(cls)}
    algo = {"name": name, **{k: v for k, v in options.items() if k in own}}
    if data.pop("her", False) and issubclass(cls, _OffPolicy):
        algo["her"] = {k: options[k] for k in V0_HER if k in options}
    record, dataset = data.pop("demos", 0), data.pop("demo_dataset", None)
    if (record or dataset) and issubclass(cls, _OffPolicy):
        demo_fields = {f.name for f in fields(SacDemos if cls is Sac else Demos)}
        algo["demos"] = {"record": record, "dataset": dataset} | {
            new: options[old] for old, new in V0_DEMOS.items() if old in options and new in demo_fields
        }
    curriculum = {new: data.pop(old) for old, new in V0_CURRICULUM.items() if old in data}
    if curriculum.get("bandit", "none") != "none":
        data["curriculum"] = curriculum
    return {**data, "algo": algo}
