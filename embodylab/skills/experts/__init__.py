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

from embodylab.skills.experts.household import HouseholdOracle
from embodylab.skills.experts.lab import Expert
from embodylab.skills.experts.registry import expert_class, expert_for, make_expert
from embodylab.skills.experts.team import TeamCarryExpert

DEFAULT_MAX_STEPS = 1000


def rollout(env, seed: int) -> bool:
    """Play one episode of `env` (lab, household or team) with its expert from `reset(seed=seed)`; True if
    it succeeded.

    A lab episode runs until the env terminates or truncates (its time limit, or `DEFAULT_MAX_STEPS` for an
    env without one), a team episode until no agent is left; success is the last step's `is_success` (every
    agent's, for a team). A household episode is the oracle's run: success is whether the goal holds at its end.
    """
    expert = make_expert(env)
    env.reset(seed=seed)
    expert.reset()
    if isinstance(expert, HouseholdOracle):  # the oracle plans, runs the skills and steps the env itself
        return expert.run().success
    if isinstance(expert, TeamCarryExpert):  # PettingZoo: a dict of actions per step
        infos: dict = {}
        while env.agents:
            _, _, _, _, infos = env.step(expert.act())
        return bool(infos and all(info["is_success"] for info in infos.values()))
    max_steps = getattr(env.spec, "max_episode_steps", None) or DEFAULT_MAX_STEPS
    info: dict = {}
    for _ in range(max_steps):
        _, _, terminated, truncated, info = env.step(expert.act())
        if terminated or truncated:
            break
    return bool(info.get("is_success", False))


__all__ = [
    "DEFAULT_MAX_STEPS",
    "Expert",
    "HouseholdOracle",
    "TeamCarryExpert",
    "expert_class",
    "expert_for",
    "make_expert",
    "rollout",
]
