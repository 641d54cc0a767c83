"""Scripted experts of every embodylab task, and `rollout(env, seed) -> bool`.

- `lab`: closed-loop phase machines over the privileged state of the lab tasks (`Expert` and its subclasses),
  one `ee_delta_pos` action per step;
- `team`: `TeamCarryExpert`, the cooperative controller of the PettingZoo team env, one action per agent;
- `household`: `HouseholdOracle`, the household tasks' expert — the symbolic oracle planner, which runs the
  skills of `embodylab.skills.household` and steps the env itself.

Experts are registered by env class (`@expert_for(LabReachEnv)`); `make_expert(env)` finds the one for the
env's class or its nearest base class.
"""

from __future__ import annotations

from embodylab.rollout import DrivesEnv, play_episode
from embodylab.skills.experts.household import HouseholdOracle
from embodylab.skills.experts.lab import Expert
from embodylab.skills.experts.registry import expert_class, expert_for, make_expert
from embodylab.skills.experts.team import TeamCarryExpert


class ExpertPolicy:
    """A scripted expert (lab or team) as a policy of `embodylab.rollout.play_episode`: reset with the
    episode, then one action per call (the expert reads the env's privileged state, not the observation)."""

    def __init__(self, expert: Expert | TeamCarryExpert):
        self.expert = expert

    def reset(self, observation) -> None:
        self.expert.reset()

    def __call__(self, observation):
        return self.expert.act()


def expert_policy(env) -> ExpertPolicy | HouseholdOracle:
    """The scripted policy of any embodylab env for `play_episode`: the task's expert (lab), the
    cooperative controller (TeamCarry) or the oracle planner, which drives the env itself (household).

    Raises:
        ValueError: the env's task has no scripted expert; the message names those that have one."""
    expert = make_expert(env)
    return expert if isinstance(expert, DrivesEnv) else ExpertPolicy(expert)


def rollout(env, seed: int) -> bool:
    """Play one episode of `env` (lab, household or team) with its expert from `reset(seed=seed)`; True if
    it succeeded: the last step's `info["is_success"]` (every agent's, for a team).

    A lab episode runs until the env terminates or truncates (its time limit, or
    `embodylab.rollout.DEFAULT_MAX_STEPS` for an env without one), a team episode until no agent is left,
    a household episode until the oracle's run ends (the goal holds, no plan is left, or time is up)."""
    return play_episode(env, expert_policy(env), seed=seed).success


__all__ = [
    "Expert",
    "ExpertPolicy",
    "HouseholdOracle",
    "TeamCarryExpert",
    "expert_class",
    "expert_for",
    "expert_policy",
    "make_expert",
    "rollout",
]
