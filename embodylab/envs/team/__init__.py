"""Multi-agent team tasks (PettingZoo `ParallelEnv`): `make("TeamCarry-v0", n_agents=N)`.

PettingZoo is imported only here, so `import embodylab` stays light.
"""

from __future__ import annotations

from embodylab.envs.team.carry import MAX_AGENTS, TeamCarryEnv

TEAM_ENVS = {"TeamCarry-v0": TeamCarryEnv}


def make(env_id: str, n_agents: int = 2, **kwargs) -> TeamCarryEnv:
    """Creates the team env `env_id` for `n_agents` agents (1..`max_agents`, default 8); `kwargs` go to the
    env (`k`, `roles`, `max_agents`, `shapes`, `max_episode_steps`, `render_mode`, `camera`, ...)."""
    if env_id.removeprefix("embodylab/") not in TEAM_ENVS:
        raise ValueError(f"unknown team env id {env_id!r}; valid ids: {', '.join(TEAM_ENVS)}")
    return TEAM_ENVS[env_id.removeprefix("embodylab/")](n_agents=n_agents, **kwargs)


__all__ = ["MAX_AGENTS", "TEAM_ENVS", "TeamCarryEnv", "make"]
