"""Record TeamCarry episodes: the entry point of `embodylab render team --agents N --policy scripted`."""

from __future__ import annotations

import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from tqdm import tqdm

from embodylab.envs.team import TEAM_ENVS, make

TEAM_POLICIES = ("scripted", "random")
TEAM_ID_ALIASES = ("team", *TEAM_ENVS, *(f"embodylab/{i}" for i in TEAM_ENVS), "TeamCarry")


def is_team_id(env_id: str) -> bool:
    return env_id in TEAM_ID_ALIASES


def render_team_episodes(
    n_agents: int,
    policy: str = "scripted",
    episodes: int = 1,
    out: str | Path = "runs/team.mp4",
    *,
    k: int = 2,
    camera: str = "follow",
    size: int = 256,
    seed: int = 0,
    fps: int = 25,
    progress: bool = True,
) -> dict:
    """Plays `episodes` TeamCarry-v0 episodes of `n_agents` agents (seeds `seed`, `seed + 1`, ...) with the
    scripted team or random actions; writes the video to `out` (.mp4 or .gif) and a contact sheet beside
    it, like `embodylab.cli.render_episodes`, and returns the same kind of summary dict.

    Raises:
        ValueError: unknown policy, camera or suffix, or a team size outside 1..8.
    """
    from embodylab.cli import EpisodeRecording, check_video_request
    from embodylab.skills.experts import TeamCarryExpert

    out = Path(out)
    if policy not in TEAM_POLICIES:
        raise ValueError(f"unknown team policy {policy!r}; valid policies: {', '.join(TEAM_POLICIES)}")
    check_video_request(out, episodes)
    env = make(
        "TeamCarry-v0", n_agents=n_agents, k=k, render_mode="rgb_array", camera=camera, render_size=size
    )
    expert = TeamCarryExpert(env) if policy == "scripted" else None
    results = []
    start = time.perf_counter()
    bar = tqdm(
        total=episodes * env.max_episode_steps,
        desc=f"TeamCarry N={n_agents}",
        unit="step",
        disable=not progress,
    )
    with EpisodeRecording(out, fps) as recording:
        for episode_seed in range(seed, seed + episodes):
            env.reset(seed=episode_seed)
            for i, agent in enumerate(env.possible_agents):
                env.action_space(agent).seed(episode_seed + i)
            if expert is not None:
                expert.reset()
            frames = [env.render()]
            infos: dict = {}
            while env.agents:
                actions = expert.act() if expert else {a: env.action_space(a).sample() for a in env.agents}
                _, _, _, _, infos = env.step(actions)
                frames.append(env.render())
                bar.update()
            bar.update(env.max_episode_steps - (len(frames) - 1))
            recording.add_episode(frames)
            info = infos.get("agent_0", {})
            results.append(
                {
                    "seed": episode_seed,
                    "success": bool(info.get("is_success", False)),
                    "steps": len(frames) - 1,
                }
            )
        sheet = recording.write_contact_sheet()
    bar.close()
    env.close()
    return {
        "env_id": "TeamCarry-v0",
        "n_agents": n_agents,
        "policy": policy,
        "episodes": results,
        "successes": sum(r["success"] for r in results),
        "mean_steps": float(np.mean([r["steps"] for r in results])),
        "frames": recording.frames,
        "wall_time_s": time.perf_counter() - start,
        "video": str(out),
        "contact_sheet": str(sheet),
    }


def render_carry_still(
    n_agents: int, out: str | Path, *, seed: int = 0, size: int = 640, progress: float = 0.4
) -> dict:
    """Writes one PNG frame of the scripted team carrying: the first step at which the payload has covered
    `progress` of its start-to-goal distance. Returns the seed, step and payload shape."""
    from embodylab.skills.experts import TeamCarryExpert

    env = make("TeamCarry-v0", n_agents=n_agents, render_mode="rgb_array", render_size=size)
    expert = TeamCarryExpert(env)
    env.reset(seed=seed)
    expert.reset()
    start_distance = env.metrics()["final_distance"]
    while env.agents and env.metrics()["final_distance"] > (1.0 - progress) * start_distance:
        env.step(expert.act())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(out, env.render())
    env.close()
    return {"seed": seed, "step": env.steps, "shape": env.layout.shape, "out": str(out)}
