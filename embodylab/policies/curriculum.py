"""Teacher-student curricula: a bandit picks the task variant of each episode by learning progress.

A curriculum has a list of arms, each a dict of `reset(options=...)` for the env (e.g. LabPush's
`{"goal_distance": (0.1, 0.16)}`, see `embodylab.envs.lab.push.goal_distance_arms`). At every reset
`CurriculumWrapper` asks the shared `CurriculumTeacher` for an arm and resets the env with its options;
at every episode end it reports `info["is_success"]`, and the teacher rewards the bandit with that arm's
absolute learning progress, so the student trains where its success rate moves fastest, up or down
(Matiisen et al. 2017, "Teacher-Student Curriculum Learning").

Use one teacher for all env copies of a run, as in teacher-student learning: every episode then informs
the one bandit. That needs the copies in this process (SB3's `DummyVecEnv`, embodylab's `make_vec` with
`threads` or `sync`); the teacher takes a lock, so threaded envs may report concurrently. A
`SubprocVecEnv` would pickle one private teacher into each worker, and the callback would see none of
them. `CurriculumCallback` logs the teacher to SB3's logger.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from embodylab.policies.bandits import Bandit, make_bandit


@dataclass
class LearningProgressConfig:
    # Slow enough that the noise of 0/1 outcomes on a flat 50% arm stays well under a real climb's signal.
    fast_rate: float = 0.05
    """weight of an arm's newest outcome in its fast average (about its last 20 episodes)."""
    slow_rate: float = 0.01
    """weight of an arm's newest outcome in its slow average (about its last 100 episodes)."""


class LearningProgress:
    """Per-arm absolute learning progress: |fast EMA - slow EMA| of the arm's episode outcomes.

    A difference of two moving averages (as in Kanitscheider et al. 2021) rather than Matiisen's slope of
    a linear fit over a window: constant memory per arm, and the two rates say directly how recent
    "recent" is. The absolute value counts forgetting (a falling success rate) as progress to be made.
    Both averages are bias-corrected (as Adam's moments), so an arm's first outcomes give zero progress
    rather than a jump from an arbitrary start value."""

    def __init__(self, n_arms: int, config: LearningProgressConfig | None = None):
        self.config = config or LearningProgressConfig()
        if not 0.0 < self.config.slow_rate < self.config.fast_rate <= 1.0:
            raise ValueError(f"need 0 < slow_rate < fast_rate <= 1; got {self.config}")
        self.episodes = np.zeros(n_arms, dtype=np.int64)
        self._rates = np.array([self.config.fast_rate, self.config.slow_rate])
        self._sums = np.zeros((n_arms, 2))  # [arm, (fast, slow)] exponentially-weighted outcome sums
        self._weights = np.zeros((n_arms, 2))  # their total weights, for the bias correction

    def update(self, arm: int, outcome: float) -> float:
        """Record one episode `outcome` of `arm` (success 0/1, or a return); its learning progress after."""
        self._sums[arm] += self._rates * (outcome - self._sums[arm])
        self._weights[arm] += self._rates * (1.0 - self._weights[arm])
        self.episodes[arm] += 1
        return float(self.progress()[arm])

    def _averages(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._sums / self._weights

    def progress(self) -> np.ndarray:
        """[n_arms] absolute learning progress; 0 for an arm without episodes."""
        averages = self._averages()
        return np.nan_to_num(np.abs(averages[:, 0] - averages[:, 1]))

    def success_rates(self) -> np.ndarray:
        """[n_arms] recent (fast-average) outcome of each arm; NaN for an arm without episodes."""
        return self._averages()[:, 0]


class CurriculumTeacher:
    """A bandit over `arms` (dicts of reset options) rewarded by each arm's absolute learning progress.

    One teacher serves every env copy of a run; a lock makes it safe for threaded vector envs."""

    def __init__(
        self,
        arms: Sequence[dict[str, Any]],
        bandit: Bandit,
        progress: LearningProgress | None = None,
        target_share: float = 0.0,
        rng: np.random.Generator | None = None,
    ):
        if len(arms) != bandit.n_arms:
            raise ValueError(f"{len(arms)} arms but the bandit has {bandit.n_arms}")
        if not 0.0 <= target_share <= 1.0:
            raise ValueError(f"target_share must be in [0, 1]; got {target_share}")
        self.arms = [dict(arm) for arm in arms]
        self.target_arm = next((i for i, arm in enumerate(self.arms) if not arm), None)
        """the arm without options (the unchanged task, which evaluation runs), if there is one"""
        if target_share > 0.0 and self.target_arm is None:
            raise ValueError("target_share needs an arm without options (the unchanged task) among the arms")
        self.bandit = bandit
        self.progress = progress or LearningProgress(len(arms))
        self.target_share = target_share
        self._rng = rng or np.random.default_rng()
        self._lock = threading.Lock()

    def next_arm(self) -> int:
        """The arm of the next episode: with probability `target_share` the unchanged task, otherwise the
        bandit's choice. Either way the episode's outcome updates that arm's progress and the bandit."""
        with self._lock:
            if self.target_share > 0.0 and self._rng.random() < self.target_share:
                return self.target_arm
            return self.bandit.select()

    def record(self, arm: int, success: float) -> None:
        """One finished episode of `arm`: update its learning progress and reward the bandit with it."""
        with self._lock:
            self.bandit.update(arm, self.progress.update(arm, float(success)))

    def arm_probabilities(self) -> np.ndarray:
        """[n_arms] probability of each arm for the next episode."""
        with self._lock:
            return self.bandit.probabilities()

    def success_rates(self) -> np.ndarray:
        """[n_arms] recent success rate of each arm; NaN for an arm not yet played to its end."""
        with self._lock:
            return self.progress.success_rates()

    def learning_progress(self) -> np.ndarray:
        """[n_arms] absolute learning progress of each arm."""
        with self._lock:
            return self.progress.progress()


def make_teacher(
    name: str,
    arms: Sequence[dict[str, Any]],
    rng: np.random.Generator,
    bandit_config=None,
    progress_config: LearningProgressConfig | None = None,
    target_share: float = 0.0,
) -> CurriculumTeacher:
    """A teacher over `arms` whose bandit is `name` (`ucb`, `thompson`, `gradient`, or `uniform` for the
    uniform-sampling baseline), drawing from `rng`; `target_share` of the episodes run the unchanged task
    (see `CurriculumTeacher`)."""
    bandit = make_bandit(name, len(arms), rng, bandit_config)
    progress = LearningProgress(len(arms), progress_config)
    return CurriculumTeacher(arms, bandit, progress, target_share=target_share, rng=rng)


def wrap_for_curriculum(
    env: gym.Env, name: str, seed: int, variants: str = "default", target_share: float = 0.0
) -> CurriculumWrapper:
    """`env` under a teacher `name` over the task's variants, `env.unwrapped.curriculum_arms()`, or with
    `variants` other than `default`, `env.unwrapped.curriculum_arms(variants)` (a family the task names,
    e.g. LabPush's `hand_start`); `target_share` of the episodes run the unchanged task, an arm of the
    family (`{}`).

    The wrapper exposes `teacher`, which `CurriculumCallback` logs."""
    arms = getattr(env.unwrapped, "curriculum_arms", None)
    if arms is None:
        raise ValueError(
            f"{type(env.unwrapped).__name__} defines no task variants (curriculum_arms) to build a "
            "curriculum over; LabPush does (goal-distance bins)"
        )
    arm_list = arms() if variants == "default" else arms(variants)
    teacher = make_teacher(name, arm_list, np.random.default_rng(seed), target_share=target_share)
    return CurriculumWrapper(env, teacher)


class CurriculumWrapper(gym.Wrapper):
    """Resets the env with the options of the teacher's arm and reports each episode's success to it.

    The arm's options override same-named options given to `reset`; `info["curriculum_arm"]` of the reset
    names the arm. An episode abandoned by a reset before it ended is not reported."""

    def __init__(self, env: gym.Env, teacher: CurriculumTeacher):
        super().__init__(env)
        self.teacher = teacher
        self.arm: int | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.arm = self.teacher.next_arm()
        obs, info = self.env.reset(seed=seed, options={**(options or {}), **self.teacher.arms[self.arm]})
        info["curriculum_arm"] = self.arm
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if (terminated or truncated) and self.arm is not None:
            self.teacher.record(self.arm, float(info["is_success"]))
            self.arm = None
        return obs, reward, terminated, truncated, info

    def arm_probabilities(self) -> np.ndarray:
        return self.teacher.arm_probabilities()

    def success_rates(self) -> np.ndarray:
        return self.teacher.success_rates()


class CurriculumCallback(BaseCallback):
    """Logs the teacher to SB3's logger every `log_every` env steps (all envs counted):
    `curriculum/p_arm{i}`, `curriculum/success_arm{i}`, `curriculum/progress_arm{i}`,
    `curriculum/episodes_arm{i}`."""

    def __init__(self, teacher: CurriculumTeacher, log_every: int = 1000, verbose: int = 0):
        super().__init__(verbose)
        if log_every < 1:
            raise ValueError(f"log_every must be at least 1; got {log_every}")
        self.teacher, self.log_every = teacher, log_every
        self._logged_periods = 0

    def _on_step(self) -> bool:
        # Vector envs advance num_timesteps by n_envs per call: log once per crossed multiple.
        periods = self.num_timesteps // self.log_every
        if periods > self._logged_periods:
            self._logged_periods = periods
            self._record()
        return True

    def _record(self) -> None:
        columns = {
            "p_arm": self.teacher.arm_probabilities(),
            "success_arm": self.teacher.success_rates(),
            "progress_arm": self.teacher.learning_progress(),
            "episodes_arm": self.teacher.progress.episodes,
        }
        for key, values in columns.items():
            for i, value in enumerate(values):
                self.logger.record(f"curriculum/{key}{i}", float(value))
