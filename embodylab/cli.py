"""The `embodylab` command: tyro over one dataclass config per subcommand.

    embodylab envs                                   table of the registered env ids
    embodylab info LabReach-v0                       one task: docstring, spaces, objects, cameras, rates
    embodylab render LabReach-v0 --out runs/r.mp4    play episodes, write a video and a contact sheet
    embodylab render team --agents 4 --policy scripted --out runs/team.mp4   a TeamCarry episode
    embodylab demo                                   the expert on every lab task, then SAC+HER on LabReach
    embodylab train --env LabReach --algo sac --her --steps 20000 --out runs/reach
    embodylab eval runs/reach --episodes 50 --video  success rate, return, length; runs/reach/eval.json

Every config is a dataclass with a `run()` method; `render_episodes` is the Python entry point of
`render` and `demo`, `embodylab.policies.rl.train` and `embodylab.policies.evaluation.evaluate` those of
`train` and `eval` (imported when they run: torch and SB3 load only for them). Bad user input raises `UsageError` (a `ValueError`), which `main` prints as one line
and turns into exit status 2.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import tyro
from gymnasium import spaces
from tqdm import tqdm

from embodylab.core.control import CONTROL_MODES
from embodylab.envs.base import OBS_MODES
from embodylab.envs.registry import ALL_ENVS, LAB_ENVS, NAMESPACE, entry, make
from embodylab.policies.config import ConfigError, TrainConfig
from embodylab.skills.experts import make_expert
from embodylab.skills.household import run_oracle
from embodylab.world_models.commands import COMMANDS as WORLD_MODEL_COMMANDS

POLICIES = ("expert", "random", "oracle")
VIDEO_SUFFIXES = (".mp4", ".gif")
CONTACT_SHEET_COLUMNS = 6
CONTACT_SHEET_MAX_ROWS = 6
HOLD_LAST_FRAME_S = 0.5
"""seconds the last frame of each episode is held in a video, so that its outcome is visible"""


EnvIdArgument = tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="ID")]]


class UsageError(ValueError):
    """A bad value given by the user (unknown id, policy, suffix...); the message names the valid choices."""


# ---- helpers shared by the subcommands and the benchmarks ---------------------------------------------
def resolve_env_id(env_id: str) -> str:
    """The full registered id of `env_id`; the `embodylab/` namespace and the `-vN` version may be omitted
    (the latest version is taken)."""
    try:
        return entry(env_id).id
    except ValueError as err:
        versions = sorted(e.id for e in ALL_ENVS if short_id(e.id).rsplit("-v", 1)[0] == short_id(env_id))
        if versions:
            return max(versions, key=lambda i: int(i.rsplit("-v", 1)[1]))
        raise UsageError(str(err)) from err


def short_id(env_id: str) -> str:
    return env_id.removeprefix(f"{NAMESPACE}/")


def describe_space(space: gym.Space) -> str:
    """A one-line summary of a space: `Box(4,) float32 [-1, 1]`, `Dict(rgb: Box(64, 64, 3) uint8 ...)`."""
    if isinstance(space, spaces.Box):
        shape = "(" + ", ".join(map(str, space.shape)) + ("," if len(space.shape) == 1 else "") + ")"
        text = f"Box{shape} {space.dtype}"
        low, high = np.unique(space.low), np.unique(space.high)
        if low.size == 1 and high.size == 1 and np.isfinite(low[0]) and np.isfinite(high[0]):
            text += f" [{low[0]:g}, {high[0]:g}]"
        return text
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {describe_space(v)}" for k, v in space.spaces.items()) + ")"
    return str(space)


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table on stdout: rich's when rich is installed, else aligned plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(c)) for c in col) for col in zip(columns, *rows, strict=True)]
        print(title)
        for line in [columns, ["-" * w for w in widths], *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        return
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        # The first column holds ids: never wrapped, so that they can be copied and grepped.
        table.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        table.add_row(*map(str, row))
    console = Console()
    if not console.is_terminal:  # piped or captured: rich would assume 80 columns and wrap every cell
        console.width = 200
    console.print(table)


# ---- playing and recording episodes -------------------------------------------------------------------
class _FrameRecorder(gym.Wrapper):
    """Appends a rendered frame to `frames` after every step, for policies that drive `step` themselves."""

    def __init__(self, env: gym.Env, frames: list, bar):
        super().__init__(env)
        self.frames, self.bar, self.info = frames, bar, {}

    def step(self, action):
        obs, reward, terminated, truncated, self.info = self.env.step(action)
        self.frames.append(self.env.render())
        self.bar.update()
        return obs, reward, terminated, truncated, self.info


def contact_sheet_path(video: Path) -> Path:
    """Where the contact sheet of `video` goes: `out.mp4` -> `out_contact.png`."""
    return video.with_name(f"{video.stem}_contact.png")


def video_writer(path: Path, fps: int):
    if path.suffix == ".gif":
        return imageio.get_writer(path, mode="I", duration=1000.0 / fps, loop=0)
    # macro_block_size=2: libx264's yuv420p needs even sides only; the default 16 would rescale 8..1024.
    return imageio.get_writer(path, fps=fps, macro_block_size=2, ffmpeg_log_level="error")


def check_video_request(out: Path, episodes: int) -> None:
    """Rejects an output path without a video suffix and a non-positive episode count (UsageError)."""
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(
            f"output {str(out)!r} has suffix {out.suffix!r}; valid suffixes: {', '.join(VIDEO_SUFFIXES)}"
        )
    if episodes < 1:
        raise UsageError(f"episodes must be at least 1; got {episodes}")


class EpisodeRecording:
    """One video of several episodes, each ending on its last frame held still, and their contact sheet:
    one row of frames per episode, at most `CONTACT_SHEET_MAX_ROWS` rows spread over the episodes."""

    def __init__(self, out: Path, fps: int):
        self.out, self.frames = out, 0
        self._hold = round(HOLD_LAST_FRAME_S * fps)
        self._sheet_rows: list[list[np.ndarray]] = []
        out.parent.mkdir(parents=True, exist_ok=True)
        self._writer = video_writer(out, fps)

    def __enter__(self) -> EpisodeRecording:
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def add_episode(self, frames: list[np.ndarray]) -> None:
        for frame in frames + [frames[-1]] * self._hold:
            self._writer.append_data(frame)
        self.frames += len(frames) + self._hold
        picks = np.linspace(0, len(frames) - 1, CONTACT_SHEET_COLUMNS).round().astype(int)
        self._sheet_rows.append([frames[i] for i in picks])

    def write_contact_sheet(self) -> Path:
        rows = self._sheet_rows
        keep = np.linspace(0, len(rows) - 1, min(len(rows), CONTACT_SHEET_MAX_ROWS)).round().astype(int)
        sheet = contact_sheet_path(self.out)
        imageio.imwrite(sheet, _contact_sheet([rows[i] for i in keep]))
        return sheet


def _contact_sheet(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tiles `rows` of equally sized [H, W, 3] frames into one uint8 image with white gaps."""
    h, w, _ = rows[0][0].shape
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    sheet = np.full((n_rows * (h + gap) + gap, n_cols * (w + gap) + gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            y, x = gap + r * (h + gap), gap + c * (w + gap)
            sheet[y : y + h, x : x + w] = frame
    return sheet


def render_episodes(
    env_id: str,
    policy: str = "expert",
    episodes: int = 1,
    out: str | Path = "runs/render.mp4",
    *,
    camera: str | None = None,
    size: int = 256,
    seed: int = 0,
    fps: int = 25,
    progress: bool = True,
) -> dict:
    """Plays `episodes` episodes of `env_id` (seeds `seed`, `seed + 1`, ...) and records them.

    Writes the video to `out` (`.mp4` or `.gif`) and a PNG contact sheet, one row of frames per episode
    (at most 6 rows, spread over the episodes), to `contact_sheet_path(out)`. Returns a dict with the
    per-episode `seed`, `success` (final `info["is_success"]`) and `steps`, the totals and the output paths.

    Raises:
        UsageError: unknown id, policy, camera or output suffix, or a size the env rejects.
    """
    out = Path(out)
    full_id = resolve_env_id(env_id)
    if policy not in POLICIES:
        raise UsageError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    check_video_request(out, episodes)
    try:
        camera_kwargs = {} if camera is None else {"camera": camera}
        env = make(full_id, render_mode="rgb_array", render_size=size, **camera_kwargs)
    except ValueError as err:  # bad camera or size: the env's message names the valid values
        raise UsageError(str(err)) from err

    household = hasattr(env.unwrapped, "goal_atoms")
    if policy == "oracle" and not household:
        env.close()
        raise UsageError(f"--policy oracle plays household tasks; {full_id} has --policy expert")
    if policy == "expert" and household:
        policy = "oracle"  # the household tasks' expert is the oracle planner
    try:
        expert = make_expert(env) if policy == "expert" else None
    except ValueError as err:  # a task without a scripted expert yet
        env.close()
        raise UsageError(f"{err}; use --policy random") from err
    max_steps = env.spec.max_episode_steps
    results = []
    start = time.perf_counter()
    bar = tqdm(total=episodes * max_steps, desc=short_id(full_id), unit="step", disable=not progress)
    with EpisodeRecording(out, fps) as recording:
        for episode_seed in range(seed, seed + episodes):
            env.reset(seed=episode_seed)
            env.action_space.seed(episode_seed)
            if expert is not None:
                expert.reset()
            frames = [env.render()]
            info: dict = {}
            if policy == "oracle":  # the oracle steps the env itself: record each of its steps
                recorder = _FrameRecorder(env, frames, bar)
                run_oracle(recorder)
                info = recorder.info
            while policy != "oracle":
                action = expert.act() if expert is not None else env.action_space.sample()
                _, _, terminated, truncated, info = env.step(action)
                frames.append(env.render())
                bar.update()
                if terminated or truncated:
                    break
            # An episode that ends early (termination, physics error) leaves its unused steps to the bar.
            bar.update(max_steps - (len(frames) - 1))
            recording.add_episode(frames)
            result = {
                "seed": episode_seed,
                "success": bool(info.get("is_success", False)),
                "steps": len(frames) - 1,
            }
            if "physics_error" in info:
                result["physics_error"] = info["physics_error"]
            results.append(result)
        sheet = recording.write_contact_sheet()
    bar.close()
    env.close()
    return {
        "env_id": full_id,
        "policy": policy,
        "episodes": results,
        "successes": sum(r["success"] for r in results),
        "mean_steps": float(np.mean([r["steps"] for r in results])),
        "frames": recording.frames,
        "wall_time_s": time.perf_counter() - start,
        "video": str(out),
        "contact_sheet": str(sheet),
    }


# ---- subcommands --------------------------------------------------------------------------------------
@dataclass
class Envs:
    """List the registered environments with their action and (state) observation spaces."""

    def run(self) -> None:
        rows = []
        for e in ALL_ENVS:
            env = gym.make(e.id, disable_env_checker=True)
            rows.append(
                [e.id, e.description, describe_space(env.action_space), describe_space(env.observation_space)]
            )
            env.close()
        print_table(
            "embodylab environments", ["id", "description", "action space", "observation (state)"], rows
        )


@dataclass
class Info:
    """Describe one environment: success criterion, spaces per mode, objects, cameras, physics rates."""

    env_id: EnvIdArgument
    """env id, e.g. LabReach-v0 (the embodylab/ namespace is optional)"""

    def run(self) -> None:
        e = entry(resolve_env_id(self.env_id))
        env = gym.make(e.id, disable_env_checker=True)
        task = env.unwrapped
        cls = type(task)
        module_doc = inspect.cleandoc(sys.modules[cls.__module__].__doc__ or "")
        class_doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        timestep = task.model.opt.timestep
        objects = task.object_states()

        print(f"{e.id} — {e.description}\n")
        for doc in (module_doc, class_doc):
            if doc:
                print(doc + "\n")
        print(f"entry point        {e.entry_point}")
        print(f"max_episode_steps  {env.spec.max_episode_steps}")
        print(f"physics timestep   {timestep:g} s")
        print(f"frame_skip         {task.frame_skip}")
        print(f"control rate       {1.0 / (timestep * task.frame_skip):g} Hz")
        print(f"cameras            {', '.join(task.cameras)}")
        listed = ", ".join(f"{n} ({c})" for n, c in zip(objects.names, objects.categories, strict=True))
        print(f"objects            {listed or '(none)'}\n")
        env.close()

        rows = []
        for mode in OBS_MODES:
            with gym.make(e.id, obs_mode=mode, disable_env_checker=True) as probe:
                rows.append([mode, describe_space(probe.observation_space)])
        with gym.make(e.id, goal_conditioned=True, disable_env_checker=True) as probe:
            rows.append(["state, goal_conditioned", describe_space(probe.observation_space)])
        print_table("observation spaces (obs_mode)", ["obs_mode", "observation space"], rows)
        rows = []
        for mode in CONTROL_MODES:
            with gym.make(e.id, control_mode=mode, disable_env_checker=True) as probe:
                rows.append([mode, describe_space(probe.action_space)])
        print_table("action spaces (control_mode)", ["control_mode", "action space"], rows)


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
        from embodylab.envs.team.render import is_team_id

        if is_team_id(self.env_id):
            result = self._render_team()
        else:
            result = render_episodes(
                self.env_id,
                "expert" if self.policy == "scripted" else self.policy,
                self.episodes,
                self.out,
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

    def _render_team(self) -> dict:
        from embodylab.envs.team.render import render_team_episodes

        try:
            return render_team_episodes(
                self.agents,
                "random" if self.policy == "random" else "scripted",
                self.episodes,
                self.out,
                camera="follow" if self.camera in (None, "front") else self.camera,
                size=self.size,
                seed=self.seed,
                fps=self.fps,
            )
        except ValueError as err:  # bad team size, camera or suffix: the message names the valid values
            raise UsageError(str(err)) from err


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
            algo="sac",
            her=True,
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


@dataclass
class Train(TrainConfig):
    """Train an SB3 agent (sac, td3, tqc, ppo; HER, demonstrations, curriculum); --resume continues a run."""

    def run(self) -> None:
        from embodylab.policies.rl import train

        start = time.perf_counter()
        run_dir = _as_usage_error(train, self)
        print(f"trained in {time.perf_counter() - start:.0f} s; {_summary(run_dir)}")
        print(
            f"wrote config.json, checkpoints/, tb/ (tensorboard --logdir {run_dir / 'tb'}), evaluations.csv"
        )
        print(f"and learning_curve.png to {run_dir}/")


@dataclass
class Eval:
    """Evaluate the last checkpoint of a run: success rate, return, episode length; writes eval.json."""

    run_dir: tyro.conf.Positional[Path]
    """run directory written by `embodylab train`"""
    episodes: int = 20
    """deterministic episodes on fixed evaluation seeds"""
    video: bool = False
    """record the first episode to <run_dir>/eval.mp4"""

    def run(self) -> None:
        from embodylab.policies.evaluation import evaluate

        report = _as_usage_error(evaluate, self.run_dir, self.episodes, self.video)
        print(f"{report['env']} {report['algo']} at step {report['step']}, {report['episodes']} episodes:")
        print(f"success rate  {report['success_rate']:.2f}")
        print(f"mean return   {report['mean_return']:.2f}")
        print(f"mean length   {report['mean_length']:.1f}")
        written = f"{self.run_dir / 'eval.json'}" + (f" and {report['video']}" if report["video"] else "")
        print(f"wrote {written}")


def _as_usage_error(function, *args):
    """Calls `function`; a bad run directory, config, checkpoint or dataset becomes a one-line error."""
    from embodylab.policies.checkpoint import CheckpointError
    from embodylab.policies.demos import DemoDatasetError

    try:
        return function(*args)
    except (ConfigError, CheckpointError, DemoDatasetError, FileNotFoundError, NotImplementedError) as err:
        raise UsageError(str(err)) from err


def _summary(run_dir: Path) -> str:
    """The last evaluation of a run, in words."""
    from embodylab.policies.evaluation import read_evaluations

    rows = read_evaluations(run_dir)
    if not rows:
        return "no evaluation ran"
    last = rows[-1]
    return f"last evaluation at step {last['step']:.0f}: success rate {last['success_rate']:.2f}"


COMMANDS = {"envs": Envs, "info": Info, "render": Render, "demo": Demo, "train": Train, "eval": Eval}
COMMANDS |= WORLD_MODEL_COMMANDS  # collect, train-wm, eval-wm, plan-wm


def main(args: list[str] | None = None) -> None:
    """Entry point of the `embodylab` command; `args` defaults to `sys.argv[1:]`."""
    command = tyro.extras.subcommand_cli_from_dict(
        COMMANDS, prog="embodylab", description="embodylab: MuJoCo-first Gymnasium robotics tasks.", args=args
    )
    try:
        command.run()
    except UsageError as err:
        print(f"embodylab: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
