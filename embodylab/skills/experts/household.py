"""The household tasks' expert: the symbolic oracle of `embodylab.skills.household`.

A household task has no per-step scripted policy: its expert plans over the skill schema and runs the
skills, which step the env themselves (`run_oracle`), re-planning when a skill fails.
"""

from __future__ import annotations

import gymnasium as gym

from embodylab.envs.household.base import HouseholdEnv
from embodylab.rollout import DrivesEnv
from embodylab.skills.experts.registry import expert_for
from embodylab.skills.household import RunReport, run_oracle


@expert_for(HouseholdEnv)
class HouseholdOracle(DrivesEnv):
    """`run_oracle` on the env after `env.reset()`: a policy of `embodylab.rollout.play_episode` that
    drives the episode itself (wrappers included: the skills step through them). `report` is the last
    run's `RunReport` (skills run, re-plans, failure reasons)."""

    def __init__(self, env: gym.Env):
        self.env = env
        self.report: RunReport | None = None

    def reset(self, observation=None) -> None:
        """Nothing to reset: the oracle plans from the env's atoms when it runs."""

    def drive(self, env: gym.Env) -> None:
        self.report = run_oracle(env)
