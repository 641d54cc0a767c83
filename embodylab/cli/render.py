"""`embodylab render` and `embodylab demo`: play episodes with a scripted policy and record them.

`render_episodes` is their Python entry point: any env id (lab, household, or `team` / `TeamCarry-v0`),
the scripted expert (the household tasks' is the oracle planner) or random actions, one video and one
contact sheet.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from embodylab.cli.common import EnvIdArgument, UsageError
from embodylab.envs.registry import LAB_ENVS, is_team_id, make, resolve_env_id, short_id
from embodylab.policies.config import Her, Sac, TrainConfig
from embodylab.recording import EpisodeRecording, check_video_request, print_table
from embodylab.rollout import play_episode
from embodylab.skills.experts import expert_policy

POLICIES = ("expert", "random", "oracle")


def _random_policy(env, team: bool):
    """Uniform random actions from the env's own action space(s), seeded per episode in `reset`."""

    class RandomActions:
        def reset(self, observation) -> None:
            pass

        def __call__(self, observation):
            if team:
                return {a: env.action_space(a).sample() for a in env.agents}
            return env.action_space.sample()

    return RandomActions()


def render_episodes(
    env_id: str,
    policy: str = "expert",
    episodes: int = 1,
    out: str | Path = "runs/render.mp4",
    *,
    agents: int = 2,
    camera: str | None = None,
    size: int = 256,
    seed: int = 0,
    fps: int = 25,
    progress: bool = True,
) -> dict:
    """Plays `episodes` episodes of `env_id` (seeds `seed`, `seed + 1`, ...) and records them.

    `env_id` is a lab or household id, or `team` / `TeamCarry-v0` (then `agents` agents). Writes the video
    to `out` (`.mp4` or `.gif`) and a PNG contact sheet, one row of frames per episode (at most 6 rows,
    spread over the episodes), to `contact_sheet_path(out)`. Returns a dict with the per-episode `seed`,
    `success` (final `info["is_success"]`) and `steps`, the totals and the output paths.

    Raises:
        ValueError: unknown id, policy, camera or output suffix, a team size outside 1..8, or a size the
            env rejects (the message names the valid values).
    """
    out = Path(out)
    if policy not in POLICIES:
        raise UsageError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    check_video_request(out, episodes)
    team = is_team_id(env_id)
    if team:
        from embodylab.envs.team import make as make_team

        full_id = "TeamCarry-v0"
        env = make_team(
            full_id,
            n_agents=agents,
            render_mode="rgb_array",
            camera="follow" if camera in (None, "front") else camera,
            render_size=size,
        )
        max_steps, desc = env.max_episode_steps, f"TeamCarry N={agents}"
    else:
        full_id = resolve_env_id(env_id)
        camera_kwargs = {} if camera is None else {"camera": camera}
        env = make(full_id, render_mode="rgb_array", render_size=size, **camera_kwargs)
        max_steps, desc = env.spec.max_episode_steps, short_id(full_id)
    household = hasattr(env.unwrapped, "goal_atoms")
    if policy == "oracle" and not household:
        env.close()
        raise UsageError(f"--policy oracle plays household tasks; {full_id} has --policy expert")
    if policy == "expert" and household:
        policy = "oracle"  # the household tasks' expert is the oracle planner
    try:
        actor = _random_policy(env, team) if policy == "random" else expert_policy(env)
    except ValueError as err:  # a task without a scripted expert yet
        env.close()
        raise UsageError(f"{err}; use --policy random") from err
    results = []
    start = time.perf_counter()
    bar = tqdm(total=episodes * max_steps, desc=desc, unit="step", disable=not progress)
    with EpisodeRecording(out, fps) as recording:
        for episode_seed in range(seed, seed + episodes):
            if policy == "random":
                if team:
                    for i, agent in enumerate(env.possible_agents):
                        env.action_space(agent).seed(episode_seed + i)
                else:
                    env.action_space.seed(episode_seed)
            episode = play_episode(env, actor, seed=episode_seed, render=True, on_step=lambda _: bar.update())
            # An episode that ends early (success, physics error) leaves its unused steps to the bar.
            bar.update(max_steps - episode.length)
            recording.add_episode(episode.frames)
            result = {"seed": episode_seed, "success": episode.success, "steps": episode.length}
            if episode.physics_error is not None:
                result["physics_error"] = episode.physics_error
            results.append(result)
        sheet = recording.write_contact_sheet()
    bar.close()
    env.close()
    return {
        "env_id": full_id,
        **({"n_agents": agents} if team else {}),
        "policy": policy,
        "episodes": results,
        "successes": sum(r["success"] for r in results),
        "mean_steps": float(np.mean([r["steps"] for r in results])),
        "frames": recording.frames,
        "wall_time_s": time.perf_counter() - start,
        "video": str(out),
        "contact_sheet": str(sheet),
    }


@dataclass
class Render:
    """Play episodes with the expert or a random policy; write a video and a PNG contact sheet."""

    env_id: EnvIdArgument
    """env id, e.g. LabReach-v0 (the embodylab/ namespace is optional)"""
    policy: Literal["expert", "scripted", "random", "oracle"] = "expert"
    """the task's scripted expert (`scripted` is the same), uniform random actions, or (household tasks)
    the oracle planner"""
    agents: int = 2
    """team size, for the team env (`render team --agents N`); ignored by single-agent envs"""
    episodes: int = 1
    """episodes to play, with seeds seed, seed+1, ..."""
    out: Path = Path("runs/render.mp4")
    """video path, .mp4 or .gif; the contact sheet goes next to it as <stem>_contact.png"""
    camera: str | None = None
    """lab: front, side or wrist (default front); household: head, overhead, corner or wrist (default head);
    team: follow (default) or overview"""
    size: int = 256
    """square frame side in pixels"""
    seed: int = 0
    """seed of the first episode"""
    fps: int = 25
    """video frame rate (the control rate is 25 Hz, so 25 plays in real time)"""

    def run(self) -> None:
        result = render_episodes(
            self.env_id,
            "expert" if self.policy == "scripted" else self.policy,
            self.episodes,
            self.out,
            agents=self.agents,
            camera=self.camera,
            size=self.size,
            seed=self.seed,
            fps=self.fps,
        )
        for r in result["episodes"]:
            outcome = "success" if r["success"] else "failure"
            extra = f" ({r['physics_error']})" if "physics_error" in r else ""
            print(f"episode seed={r['seed']}: {outcome} after {r['steps']} steps{extra}")
        print(f"{result['successes']}/{len(result['episodes'])} successful")
        print(f"wrote {result['video']} ({result['frames']} frames) and {result['contact_sheet']}")


@dataclass
class Demo:
    """Play the expert on every lab task, then train SAC+HER on LabReach; videos, learning curve, summary."""

    episodes: int = 3
    """episodes per task, seeds 0..episodes-1"""
    out: Path = Path("runs/demo")
    """output directory"""
    size: int = 256
    """square frame side in pixels"""
    fps: int = 25
    """video frame rate"""
    rl_steps: int = 20_000
    """env steps of SAC+HER on LabReach after the experts, about two minutes on 2 cores (0: skip)"""

    def run(self) -> None:
        start = time.perf_counter()
        tasks = {}
        for env_id in [e.id for e in LAB_ENVS]:
            result = render_episodes(
                env_id,
                "expert",
                self.episodes,
                self.out / f"{short_id(env_id)}.mp4",
                size=self.size,
                fps=self.fps,
            )
            tasks[env_id] = {
                "successes": result["successes"],
                "episodes": self.episodes,
                "success_rate": result["successes"] / self.episodes,
                "failed_seeds": [r["seed"] for r in result["episodes"] if not r["success"]],
                "mean_steps": result["mean_steps"],
                "wall_time_s": round(result["wall_time_s"], 2),
                "video": result["video"],
                "contact_sheet": result["contact_sheet"],
            }
        rows = [
            [i, f"{t['successes']}/{t['episodes']}", f"{t['mean_steps']:.1f}", f"{t['wall_time_s']:.1f}"]
            for i, t in tasks.items()
        ]
        print_table("expert demo", ["id", "successes", "mean steps", "wall time (s)"], rows)
        rl = self._train_reach() if self.rl_steps else None
        total = time.perf_counter() - start
        summary = {"config": asdict(self), "tasks": tasks, "rl": rl, "wall_time_s": round(total, 2)}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(
            f"total {total:.1f} s; wrote a video and contact sheet per task and summary.json to {self.out}/"
        )
        if rl:
            print(f"SAC+HER on LabReach: learning curve {rl['learning_curve']}, video {rl['video']}")

    def _train_reach(self) -> dict:
        """SAC+HER on LabReach with the default hyperparameters, evaluated on 20 episodes."""
        import shutil

        from embodylab.policies.evaluation import evaluate, read_evaluations
        from embodylab.policies.rl import train

        run_dir = self.out / "reach_sac_her"
        shutil.rmtree(run_dir, ignore_errors=True)  # the demo's own output of an earlier `make demo`
        start = time.perf_counter()
        config = TrainConfig(
            env="embodylab/LabReach-v0",
            algo=Sac(her=Her()),
            steps=self.rl_steps,
            out=str(run_dir),
            video=False,
        )
        train(config)
        train_time = time.perf_counter() - start
        report = evaluate(run_dir, episodes=20, video=True)
        print(
            f"SAC+HER on LabReach: {self.rl_steps} steps in {train_time:.0f} s; "
            f"success rate {report['success_rate']:.2f} over {report['episodes']} episodes"
        )
        return {
            "run_dir": str(run_dir),
            "steps": self.rl_steps,
            "train_time_s": round(train_time, 1),
            "curve": [
                {"step": int(r["step"]), "success_rate": r["success_rate"]} for r in read_evaluations(run_dir)
            ],
            "success_rate": report["success_rate"],
            "mean_return": report["mean_return"],
            "learning_curve": str(run_dir / "learning_curve.png"),
            "video": report["video"],
        }
