"""Configs of an RL run: `TrainConfig` (what to train, for how long, where) holding an `AlgoConfig`.

Plain dataclasses with no torch or SB3 import, so that the CLI can build its parser from them cheaply.
A run writes its config to `runs/NAME/config.json`; `TrainConfig.from_json` re-creates it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

ALGOS = ("sac", "td3", "tqc", "ppo")
OFF_POLICY_ALGOS = ("sac", "td3", "tqc")
CURRICULA = ("none", "ucb", "gradient", "thompson")


class ConfigError(ValueError):
    """A training config that cannot run; the message names the bad value and the valid choices."""


@dataclass
class AlgoConfig:
    """Hyperparameters handed to the SB3 algorithm. The defaults are tuned for the lab tasks on a 2-core CPU
    (see README, "Training"): 64x64 networks with one update per env step run SAC+HER ~2.2x faster than
    SB3's 256x256 defaults (~200 vs ~90 env steps/s on idle cores); with observation normalisation and
    relative goal features SAC+HER solves LabReach in 3-4k env steps (9-10k without). Fields left None
    are filled per task by `resolved` from `TASK_PRESETS`."""

    learning_rate: float = 1e-3
    batch_size: int = 256
    buffer_size: int | None = None
    """replay capacity in transitions; None keeps every transition of the run (`steps`)."""
    learning_starts: int = 1000
    """env steps of uniform random actions before the first update (off-policy only)."""
    train_freq: int = 50
    """env steps between two rounds of updates (off-policy)."""
    gradient_steps: int = 50
    """updates per round (off-policy): one per env step. Half that runs ~1.8x faster per step but needed
    ~16k steps instead of ~9k to solve LabReach: the same wall time, worse sample efficiency."""
    net_arch: tuple[int, ...] = (64, 64)
    """hidden layer sizes of the actor and of each critic."""
    gamma: float | None = None
    """discount; None: the task's preset (`TASK_PRESETS`): 0.95 for LabReach, 0.98 where an object has to
    be moved, whose expert solutions take 40-60 steps (γ^50 is 0.08 at 0.95, 0.36 at 0.98)."""
    tau: float = 0.005
    """Polyak factor of the target networks (off-policy)."""
    n_sampled_goal: int = 4
    """HER: relabelled goals per real transition (a relabelled fraction of 4/5)."""
    goal_selection_strategy: Literal["future", "final", "episode"] = "future"
    normalize_obs: bool = True
    """standardise observations and goals with running statistics, clipped to ±5, inside the networks
    (`embodylab.policies.normalization`), as DDPG+HER does."""
    relative_goals: bool = True
    """with normalize_obs and 3-D position goals: also feed the networks desired - achieved goal and both
    goals relative to the gripper (see `RunningNormExtractor`)."""
    bc_weight: float | None = None
    """SAC with demonstrations: weight of the Q-filtered behaviour-cloning loss on the demonstration rows
    (`embodylab.policies.bc`); None: 1.0 for SAC with demonstrations. 0 turns it off (symmetric sampling
    only); td3 and tqc have no BC term (a value above 0 is rejected for them)."""
    bc_q_alpha: float | None = None
    """SAC with demonstrations: None leaves the actor's SAC term as it is; a value α scales it by
    α / mean |Q| over the batch, as TD3+BC does (Fujimoto & Gu 2021: α 2.5), so that `bc_weight` is
    relative to Q's scale."""
    critic_layer_norm: bool = False
    """SAC: LayerNorm after every hidden layer of the critics, as in RLPD (`embodylab.policies.critic_norm`)."""
    demo_reset_prob: float | None = None
    """with demonstrations: chance that a training episode starts from a state along a demonstration
    instead of the task's own start (Nair et al. 2018; `embodylab.policies.demo_resets`); evaluation
    always starts normally. None: `DEFAULT_DEMO_RESET_PROB` (0) with demonstrations, 0 without (the value
    used is written to config.json). Needs an embodylab env and demos recorded with their seeds."""
    action_l2: float = 0.0
    """SAC: weight of the squared-action penalty in the actor loss (DDPG+HER's `action_l2`, 1.0 there;
    `embodylab.policies.bc.DemoSAC`): where the critic has nothing to say, the policy's actions stay small."""
    energy_priority: bool = False
    """HER: replay episodes in proportion to how much the achieved goal (an object) gained energy in them
    (Zhao & Tresp 2018; `embodylab.policies.energy_priority`), instead of uniformly."""
    n_step_return: int = 1
    """off-policy with HER (or without HER and without demonstrations): rewards summed over this many steps
    before the critic's target bootstraps, γⁿ then (`embodylab.policies.nstep_her`; 1: one-step targets).
    Not PPO's `n_steps`. A sparse goal reward then travels n transitions back per update instead of one;
    the later n - 1 actions are the behaviour policy's, so the target leans towards its value."""
    ent_coef: float | None = None
    """SAC and TQC: a fixed entropy coefficient α; None learns α towards SB3's target entropy (minus the
    action dimensions), which on LabPush falls to ~0.004 within 10k steps and leaves exploration to
    `random_action_prob`."""
    ibrl: bool = False
    """SAC with demonstrations: imitation-bootstrapped RL (Hu et al. 2023; `embodylab.policies.ibrl`). A
    policy cloned from the demonstrations before training proposes an action beside the actor's, and the
    critic picks the better of the two, both for the executed action and in the TD target."""
    ibrl_bc_updates: int = 5000
    """with `ibrl`: Adam updates (minibatches of 256) that fit the cloned policy to the demonstrations"""
    ibrl_bc_hidden: int = 256
    """with `ibrl`: width of the cloned policy's two hidden layers"""
    random_action_prob: float = 0.0
    """off-policy: chance that a training step's action is drawn uniformly from the action space instead
    of the policy's (DDPG+HER's 0.3; `embodylab.policies.exploration`); evaluation never does."""
    n_steps: int = 1024
    """PPO: env steps per rollout (its minibatches are `batch_size`)."""
    torch_threads: int = 1
    """torch intra-op threads. On 2 idle cores two threads gain nothing for 64x64 networks (192 vs 200
    steps/s); with the other core busy (tests, a second run) two threads drop SB3's SAC from ~60 to 12-25."""

    def resolved(self, env_id: str, with_demos: bool = False) -> AlgoConfig:
        """This config with every None field filled: `gamma` from the preset of `env_id` (full id),
        `demo_reset_prob` from whether the run learns from demonstrations (`with_demos`)."""
        preset = {
            **DEFAULT_PRESET,
            **TASK_PRESETS.get(env_id, {}),
            "demo_reset_prob": DEFAULT_DEMO_RESET_PROB if with_demos else 0.0,
        }
        return replace(self, **{k: v for k, v in preset.items() if getattr(self, k) is None})


DEFAULT_DEMO_RESET_PROB = 0.0
"""`AlgoConfig.demo_reset_prob` of a run with demonstrations that leaves it None. Off: on LabPush with 20
demos, p 0.5 reached a best of 10% within 50k steps against 5% without (1 seed; 20k-step screening 5% vs
5%), no clear gain (README, "Training"; benchmarks/results/learning_push_screen.json)."""

DEFAULT_PRESET: dict[str, object] = {"gamma": 0.98}
"""AlgoConfig values for the fields left None, for tasks without an entry in `TASK_PRESETS`."""
TASK_PRESETS: dict[str, dict[str, object]] = {
    # Reach is solved in ~10k steps at 0.95 (README, "Training"); the short horizon needs no more.
    "embodylab/LabReach-v0": {"gamma": 0.95},
}
"""Per-task AlgoConfig values for the fields left None, by full env id."""


@dataclass
class TrainConfig:
    """One training run: `embodylab train --env ID --algo sac --her --steps N --seed S --out runs/NAME`."""

    env: str = "embodylab/LabReach-v0"
    """env id (the embodylab/ namespace and -v0 may be omitted)"""
    algo: Literal["sac", "td3", "tqc", "ppo"] = "sac"
    her: bool = False
    """goal-conditioned observations with Hindsight Experience Replay (off-policy algorithms only)"""
    reward_type: Literal["auto", "sparse", "dense"] = "auto"
    """auto: sparse with --her, dense without"""
    demos: int = 0
    """record this many expert episodes as a Minari dataset and learn from them (symmetric sampling)"""
    demo_dataset: str | None = None
    """Minari dataset directory to read demonstrations from (instead of recording --demos)"""
    curriculum: Literal["none", "ucb", "gradient", "thompson", "uniform"] = "none"
    """bandit curriculum over task variants (embodylab.policies.curriculum); `uniform` samples the
    variants uniformly, the baseline a curriculum is compared with"""
    curriculum_variants: str = "default"
    """which family of the task's variants the curriculum chooses among; `default`: the task's own choice.
    LabPush: `goal_distance` (the default, goal-distance bins) or `hand_start` (the hand starts 5-10 cm or
    10-20 cm from the cube, or as usual); evaluation always runs the unchanged task"""
    curriculum_target_share: float = 0.0
    """share of the training episodes that run the unchanged task whatever the bandit prefers (it must be
    one of the variants, as in `hand_start`); the rest the curriculum picks. A bandit chasing learning
    progress can otherwise leave the task that evaluation runs"""
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
    algo_config: AlgoConfig = field(default_factory=AlgoConfig)

    def validate(self) -> None:
        """Raises `ConfigError` for option combinations that cannot run."""
        if self.demos and self.demo_dataset:
            raise ConfigError(
                "give either --demos N (record expert episodes) or --demo-dataset PATH (read them)"
            )
        if self.her and self.algo not in OFF_POLICY_ALGOS:
            raise ConfigError(
                f"--her needs an off-policy algorithm ({', '.join(OFF_POLICY_ALGOS)}); got {self.algo!r}"
            )
        if (self.demos or self.demo_dataset) and self.algo not in OFF_POLICY_ALGOS:
            raise ConfigError(
                f"learning from demonstrations needs an off-policy algorithm ({', '.join(OFF_POLICY_ALGOS)}); "
                f"got {self.algo!r}"
            )
        if self.algo_config.bc_weight and self.algo != "sac":
            raise ConfigError(
                f"algo_config.bc_weight (behaviour cloning on demonstrations) is implemented for sac only; "
                f"got algo {self.algo!r} with bc_weight {self.algo_config.bc_weight}"
            )
        alpha = self.algo_config.bc_q_alpha
        if alpha is not None and not alpha > 0:
            raise ConfigError(f"algo_config.bc_q_alpha must be positive (or None); got {alpha}")
        if self.algo_config.critic_layer_norm and self.algo != "sac":
            raise ConfigError(
                f"algo_config.critic_layer_norm is implemented for sac only; got algo {self.algo!r}"
            )
        if self.algo_config.action_l2 and self.algo != "sac":
            raise ConfigError(f"algo_config.action_l2 is implemented for sac only; got algo {self.algo!r}")
        if self.algo_config.action_l2 < 0:
            raise ConfigError(f"algo_config.action_l2 must not be negative; got {self.algo_config.action_l2}")
        ent_coef = self.algo_config.ent_coef
        if ent_coef is not None and (self.algo not in ("sac", "tqc") or not ent_coef > 0):
            raise ConfigError(
                f"algo_config.ent_coef fixes SAC's and TQC's entropy coefficient and must be positive; "
                f"got {ent_coef} with algo {self.algo!r}"
            )
        if self.algo_config.energy_priority and not (self.her and self.algo in OFF_POLICY_ALGOS):
            raise ConfigError("algo_config.energy_priority prioritises hindsight replay and needs --her")
        n_step = self.algo_config.n_step_return
        if n_step < 1:
            raise ConfigError(f"algo_config.n_step_return must be at least 1; got {n_step}")
        if n_step > 1:
            if self.algo_config.energy_priority:
                raise ConfigError("algo_config.n_step_return > 1 and energy_priority cannot be combined")
            if not self.her and (self.demos or self.demo_dataset):
                raise ConfigError(
                    "algo_config.n_step_return > 1 with demonstrations needs --her (n-step returns are "
                    "implemented for the hindsight replay buffer with demonstrations)"
                )
        random_prob = self.algo_config.random_action_prob
        if not 0.0 <= random_prob <= 1.0:
            raise ConfigError(f"algo_config.random_action_prob must lie in [0, 1]; got {random_prob}")
        for name, used in (("random_action_prob", random_prob > 0), ("n_step_return", n_step > 1)):
            if used and self.algo not in OFF_POLICY_ALGOS:
                raise ConfigError(
                    f"algo_config.{name} is for off-policy algorithms ({', '.join(OFF_POLICY_ALGOS)}); "
                    f"got {self.algo!r}"
                )
        if not 0.0 <= self.curriculum_target_share <= 1.0:
            raise ConfigError(
                f"curriculum_target_share must be in [0, 1]; got {self.curriculum_target_share}"
            )
        if self.curriculum == "none" and (
            self.curriculum_variants != "default" or self.curriculum_target_share
        ):
            raise ConfigError(
                "--curriculum-variants and --curriculum-target-share shape a curriculum and need one (--curriculum "
                f"ucb, gradient, thompson or uniform); got variants {self.curriculum_variants!r}, target share "
                f"{self.curriculum_target_share}"
            )
        if self.algo_config.ibrl and not (self.algo == "sac" and (self.demos or self.demo_dataset)):
            raise ConfigError(
                "algo_config.ibrl clones the demonstrations into a second policy and is implemented for "
                f"sac with --demos N or --demo-dataset PATH; got algo {self.algo!r}"
                + ("" if (self.demos or self.demo_dataset) else " without demonstrations")
            )
        for name in ("ibrl_bc_updates", "ibrl_bc_hidden"):
            if getattr(self.algo_config, name) < 1:
                raise ConfigError(
                    f"algo_config.{name} must be at least 1; got {getattr(self.algo_config, name)}"
                )
        reset_prob = self.algo_config.demo_reset_prob
        if reset_prob is not None and not 0.0 <= reset_prob <= 1.0:
            raise ConfigError(f"algo_config.demo_reset_prob must lie in [0, 1]; got {reset_prob}")
        if reset_prob and not (self.demos or self.demo_dataset):
            raise ConfigError(
                f"algo_config.demo_reset_prob {reset_prob} starts episodes from demonstration states and "
                "needs --demos N or --demo-dataset PATH"
            )
        for name in ("steps", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1; got {getattr(self, name)}")
        for name in ("demos", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative; got {getattr(self, name)}")

    @property
    def goal_reward_type(self) -> str:
        """The env's `reward_type`: sparse goal rewards with HER, dense shaping without, unless given."""
        if self.reward_type != "auto":
            return self.reward_type
        return "sparse" if self.her else "dense"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """The config that `to_json` wrote; unknown keys raise `ConfigError` naming them."""
        data = json.loads(text)
        algo = data.pop("algo_config", {})
        known, known_algo = {f.name for f in fields(cls)}, {f.name for f in fields(AlgoConfig)}
        unknown = sorted(set(data) - known) + sorted(f"algo_config.{k}" for k in set(algo) - known_algo)
        if unknown:
            raise ConfigError(f"config has unknown keys {unknown}")
        if "net_arch" in algo:
            algo["net_arch"] = tuple(algo["net_arch"])
        return cls(**data, algo_config=AlgoConfig(**algo))

    @classmethod
    def load(cls, run_dir: str | Path) -> TrainConfig:
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a training run directory")
        return cls.from_json(path.read_text())
