"""The household tasks' expert: the symbolic oracle of `embodylab.skills.household`.

A household task has no per-step scripted policy: its expert plans over the skill schema and runs the
skills, which step the env themselves (`run_oracle`), re-planning when a skill fails.
"""

from __future__ import annotations

import gymnasium as gym

from embodylab.envs.household.base import HouseholdEnv
from embodylab.skills.experts.registry import expert_for
from embodylab.skills.household import RunReport, run_oracle


@expert_for(HouseholdEnv)
class HouseholdOracle:
    """`run_oracle` on `env` (wrappers included: the skills step through them) after `env.reset()`."""

    def __init__(self, env: gym.Env):
        self.env = env

    def reset(self) -> None:
        """Nothing to reset: the oracle plans from the env's atoms when it runs."""

    def run(self) -> RunReport:
        return run_oracle(self.env)
