"""Throughput of embodylab against raw MuJoCo and peer libraries, measured side by side in one run.

For every embodylab env, in `state` mode with seeded random actions:
- env steps/s through `gymnasium.make` (reset time excluded) and the median reset time;
- the physics limit: raw `mj_step(model, data, nstep=frame_skip)` on the env's own model, replaying the
  control sequence the env produced from the same reset states (so the physics does exactly the same
  work), expressed in env steps/s; and the ratio env / limit;
- offscreen render fps (64x64 and 128x128; rgb, depth, segmentation) from the `front` camera;
- TeamCarry-v0 (PettingZoo) for teams of 1, 2, 4 and 8: env steps/s, reset time and the raw limit, replaying
  the controls and the grip constraints' on/off states the env produced;
- `make_vec` with 8 envs (modes `threads` and `processes`) against one env, on LabPickPlace, beside the
  ceiling of any 2-worker scheme here: raw `mujoco.rollout` of the same model with 2 threads against 1.
Peers (Gymnasium-Robotics FetchPickAndPlace-v4, robosuite Lift, Meta-World pick-place-v3) run in their own
virtual environments (`make bench-peers`) in the same invocation, alternating with ours; everything is
repeated `repeats` times and medians are reported.

Writes benchmarks/results/throughput.json, throughput.md (the table the README shows) and throughput.png.

    python benchmarks/throughput.py            # make bench runs it
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import tyro
from common import machine_info, write_json
from peers.run import PEERS, peer_available, run_peer
from tqdm import tqdm

import embodylab
from embodylab.core.rendering import OffscreenRenderer, configure_gl_backend
from embodylab.envs.registry import env_ids

RESULTS = Path(__file__).parent / "results"
RENDER_MODES = ("rgb", "depth", "segmentation")
HEADLINE_ENV = "embodylab/LabPickPlace-v0"
PEER_LABELS = {
    "fetch": "Fetch PickAndPlace",
    "robosuite": "robosuite Lift",
    "metaworld": "Meta-World pick-place",
}


@dataclass
class ThroughputConfig:
    env_ids: list[str] = field(default_factory=env_ids)
    """embodylab envs to measure (default: every registered id)"""
    steps: int = 2000
    """env steps timed per env and repeat"""
    resets: int = 30
    """resets timed per env and repeat"""
    render_frames: int = 150
    """frames timed per (env, size, mode) and repeat"""
    render_sizes: tuple[int, ...] = (64, 128)
    vec_envs: int = 8
    team_sizes: tuple[int, ...] = (1, 2, 4, 8)
    """TeamCarry-v0 team sizes to measure (empty: none)"""
    team_steps: int = 1000
    vec_steps: int = 1000
    """vector steps timed for make_vec (each steps `vec_envs` envs)"""
    repeats: int = 3
    peers: bool = True
    """measure the peer libraries too (needs `make bench-peers`; skipped with a note when missing)"""
    peer_steps: int = 1000
    seed: int = 0
    out: Path = RESULTS / "throughput.json"


def _random_actions(space: gym.spaces.Box, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(space.low, space.high, size=(count, *space.shape))


def time_env(env_id: str, steps: int, seed: int, segment: int = 50) -> dict:
    """Env steps/s, the raw-physics limit on the same trajectories, and their ratio.

    Paired measurement: every `segment` env steps (or at an episode's end), a second `MjData` copied from the
    env's state at the segment's start replays the controls the env produced with raw `mj_step`, so the
    physics does exactly the same work; env and raw alternate every few milliseconds and drifts of a shared
    machine hit both alike."""
    env = gym.make(env_id)
    task = env.unwrapped
    model, data = task.model, task.data
    raw = mujoco.MjData(model)
    actions = _random_actions(env.action_space, steps, seed)
    controls = np.empty((segment, model.nu))
    clock = time.perf_counter
    env.reset(seed=seed)
    env_time = raw_time = replay_error = 0.0
    done = 0
    while done < steps:
        mujoco.mj_copyData(raw, model, data)  # the segment's start state, solver warm start included
        count, ended = 0, False
        while count < segment and done + count < steps and not ended:
            start = clock()
            _, _, terminated, truncated, _ = env.step(actions[done + count])
            env_time += clock() - start
            controls[count] = data.ctrl
            count += 1
            ended = terminated or truncated
        for k in range(count):
            start = clock()
            raw.ctrl[:] = controls[k]
            mujoco.mj_step(model, raw, nstep=task.frame_skip)
            raw_time += clock() - start
        # The replay must have done the env's physics exactly (it is deterministic): checked, not assumed.
        replay_error = max(replay_error, float(np.abs(raw.qpos - data.qpos).max()))
        done += count
        if ended:
            env.reset()
    env.close()
    env_rate, limit = steps / env_time, steps / raw_time
    return {
        "env_steps_per_s": env_rate,
        "raw_limit_env_steps_per_s": limit,
        "raw_physics_steps_per_s": limit * task.frame_skip,
        "ratio_to_limit": env_rate / limit,
        "substeps": task.frame_skip,
        "timestep": model.opt.timestep,
        "replay_max_qpos_error": replay_error,
    }


def time_resets(env_id: str, count: int, seed: int, apartment_pool: int | None = None) -> float:
    """Median wall time of `reset(seed=...)` in milliseconds. With `apartment_pool` (household envs), the
    resets cycle through that many apartments, each compiled once first (`HouseholdEnv.apartment_cache_size`)."""

    def options(i: int) -> dict | None:
        return None if apartment_pool is None else {"apartment_seed": i % apartment_pool}

    env = gym.make(env_id)
    for i in range(apartment_pool or 1):
        env.reset(seed=seed + i, options=options(i))
    times = []
    for i in range(count):
        start = time.perf_counter()
        env.reset(seed=seed + i, options=options(i))
        times.append(time.perf_counter() - start)
    env.close()
    return 1e3 * statistics.median(times)


def time_render(env_id: str, size: int, frames: int, seed: int) -> dict[str, float]:
    """Frames/s of the env's default camera (lab: front; household: head) per mode, shadows off."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    task = env.unwrapped
    rates = {}
    with OffscreenRenderer(task.model, size, size) as renderer:
        draw = {"rgb": renderer.rgb, "depth": renderer.depth, "segmentation": renderer.geom_ids}
        for mode in RENDER_MODES:
            draw[mode](task.data, task.camera)  # warm-up: the first frame uploads the model
            start = time.perf_counter()
            for _ in range(frames):
                draw[mode](task.data, task.camera)
            rates[mode] = frames / (time.perf_counter() - start)
    env.close()
    return rates


def time_team(n_agents: int, steps: int, resets: int, seed: int) -> dict:
    """TeamCarry-v0 env steps/s against raw `mj_step` replaying the same controls and grip states (from a
    copy of the episode's initial state), and reset times. The env compiles a model the first time it
    meets a scene topology (payload shape, obstacle count) and writes later layouts into it, so resets
    are timed in two passes over the same seeds: `reset_cold_ms` is the median of the first-pass resets
    that compiled, `reset_ms` the median of the second pass (all warm)."""
    from embodylab.envs.team import make as make_team

    env = make_team("TeamCarry-v0", n_agents=n_agents)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    env.reset(seed=seed)
    cold = [time.perf_counter() - start]  # a new env compiles
    model, data = env.model, env.data
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    initial = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, initial, spec)
    controls = np.empty((steps, model.nu))
    grips = np.empty((steps, model.neq), dtype=np.uint8)
    elapsed, done = 0.0, 0
    for t in range(steps):
        if not env.agents:
            break  # one episode: the replay below runs on its compiled model
        actions = {a: rng.uniform(-1, 1, 5).astype(np.float32) for a in env.agents}
        start = time.perf_counter()
        env.step(actions)
        elapsed += time.perf_counter() - start
        controls[t], grips[t] = data.ctrl, data.eq_active
        done += 1
    env_rate = done / elapsed

    mujoco.mj_setState(model, data, initial, spec)
    mujoco.mj_forward(model, data)
    elapsed = 0.0
    for t in range(done):
        start = time.perf_counter()
        data.ctrl[:] = controls[t]
        data.eq_active[:] = grips[t]
        mujoco.mj_step(model, data, nstep=env.frame_skip)
        elapsed += time.perf_counter() - start
    limit = done / elapsed

    warm = []
    for second_pass in (False, True):
        for i in range(resets):
            compiled = len(env._scenes)
            start = time.perf_counter()
            env.reset(seed=seed + 1 + i)
            elapsed = time.perf_counter() - start
            if second_pass:
                warm.append(elapsed)
            elif len(env._scenes) > compiled:
                cold.append(elapsed)
    env.close()
    return {
        "env_steps_per_s": env_rate,
        "raw_limit_env_steps_per_s": limit,
        "ratio_to_limit": env_rate / limit,
        "agent_steps_per_s": env_rate * n_agents,
        "reset_ms": 1e3 * statistics.median(warm),
        "reset_cold_ms": 1e3 * statistics.median(cold),
        "bodies": model.nbody,
        "dof": model.nv,
        "steps_timed": done,
    }


VECTOR_MODES = ("threads", "processes")


def time_vector(env_id: str, num_envs: int, steps: int, seed: int, rounds: int = 5) -> dict:
    """Env steps/s of make_vec per mode against single envs doing the same work.

    The single-env baseline steps `num_envs` separately seeded envs (seeds `seed + i`, as the vector env
    seeds them) one after another in a plain loop, with the same actions: physics cost varies with the
    trajectory (contacts), so both sides step the same trajectories. The baseline and each mode take turns
    in `rounds` rounds of `steps / rounds` steps, so drifts of a shared machine hit all of them alike; rates
    are totals over the rounds."""
    actions = _random_actions(gym.make(env_id).action_space, steps, seed)
    batched = np.repeat(actions[:, None], num_envs, axis=1)
    singles = [gym.make(env_id) for _ in range(num_envs)]
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    vecs = {mode: embodylab.make_vec(env_id, num_envs, mode=mode) for mode in VECTOR_MODES}
    for vec in vecs.values():
        vec.reset(seed=seed)
    elapsed = dict.fromkeys(["single", *VECTOR_MODES], 0.0)
    bounds = np.linspace(0, steps, rounds + 1).round().astype(int)
    for first, last in zip(bounds[:-1], bounds[1:], strict=True):
        start = time.perf_counter()
        for i in range(first, last):
            for env in singles:
                _, _, terminated, truncated, _ = env.step(actions[i])
                if terminated or truncated:
                    env.reset()
        elapsed["single"] += time.perf_counter() - start
        for mode, vec in vecs.items():
            start = time.perf_counter()
            for i in range(first, last):
                vec.step(batched[i])
            elapsed[mode] += time.perf_counter() - start
    for env in [*singles, *vecs.values()]:
        env.close()

    single_rate = num_envs * steps / elapsed["single"]
    result: dict = {"single_env_steps_per_s": single_rate}
    for mode in VECTOR_MODES:
        rate = num_envs * steps / elapsed[mode]
        result[mode] = {"vec_env_steps_per_s": rate, "speedup": rate / single_rate}
    result["raw_two_thread_scaling"] = raw_thread_scaling(env_id, num_envs, seed)
    return result


def raw_thread_scaling(env_id: str, num_envs: int, seed: int, nstep: int = 2000) -> float:
    """Physics steps/s of `mujoco.rollout` over `num_envs` copies with 2 threads against 1: the most any
    2-worker vector env can gain here (it has no Python at all)."""
    from mujoco import rollout

    env = gym.make(env_id)
    env.reset(seed=seed)
    model, data = env.unwrapped.model, env.unwrapped.data
    size = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    state = np.empty(size)
    mujoco.mj_getState(model, data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    initial = np.repeat(state[None], num_envs, axis=0)
    control = np.repeat(data.ctrl[None, None], num_envs, axis=0).repeat(nstep, axis=1)
    rates = {}
    for threads in (1, 2):
        datas = [mujoco.MjData(model) for _ in range(threads)]
        with rollout.Rollout(nthread=threads) as runner:
            runner.rollout(model, datas, initial, control[:, :10])  # warm-up: thread pool and caches
            start = time.perf_counter()
            runner.rollout(model, datas, initial, control)
            rates[threads] = num_envs * nstep / (time.perf_counter() - start)
    env.close()
    return rates[2] / rates[1]


def _median_tree(samples: list):
    """Element-wise median of a list of equally shaped nested dicts of numbers."""
    first = samples[0]
    if isinstance(first, dict):
        return {k: _median_tree([s[k] for s in samples]) for k in first}
    if isinstance(first, int | float) and not isinstance(first, bool):
        return statistics.median(samples)
    return first


def measure(config: ThroughputConfig) -> dict:
    peers = [p for p in PEERS if config.peers and peer_available(p)]
    missing = [p for p in PEERS if config.peers and not peer_available(p)]
    if missing:
        print(f"note: peer venvs missing for {missing}; build them with `make bench-peers`")
    per_repeat = (
        len(config.env_ids) * (2 + len(config.render_sizes)) + len(peers) + len(config.team_sizes) + 1
    )
    ours: list[dict] = []
    theirs: list[dict] = []
    vector: list[dict] = []
    team: list[dict] = []
    with tqdm(total=config.repeats * per_repeat, desc="throughput", unit="run") as progress:
        for repeat in range(config.repeats):
            seed = config.seed + repeat
            ours.append({})
            theirs.append({})
            # Alternate: one of ours, then one peer, so that drifts of the machine hit both alike.
            queue = list(peers)
            for env_id in config.env_ids:
                result = time_env(env_id, config.steps, seed)
                result["reset_ms"] = time_resets(env_id, config.resets, seed)
                if "/Household" in env_id:
                    result["reset_pooled_ms"] = time_resets(env_id, config.resets, seed, apartment_pool=4)
                progress.update(2)
                result["render_fps"] = {}
                for size in config.render_sizes:
                    result["render_fps"][str(size)] = time_render(env_id, size, config.render_frames, seed)
                    progress.update()
                ours[-1][env_id] = result
                if queue:
                    peer = queue.pop(0)
                    theirs[-1][peer] = run_peer(peer, config.peer_steps, seed)
                    progress.update()
            for peer in queue:
                theirs[-1][peer] = run_peer(peer, config.peer_steps, seed)
                progress.update()
            team.append({})
            for n_agents in config.team_sizes:
                team[-1][str(n_agents)] = time_team(n_agents, config.team_steps, config.resets, seed)
                progress.update()
            vector.append(time_vector(HEADLINE_ENV, config.vec_envs, config.vec_steps, seed))
            progress.update()
    return {
        "embodylab": _median_tree(ours),
        "peers": _median_tree(theirs) if peers else {},
        "team": _median_tree(team) if config.team_sizes else {},
        "make_vec": {"env_id": HEADLINE_ENV, "num_envs": config.vec_envs, **_median_tree(vector)},
        "samples": {"embodylab": ours, "peers": theirs, "team": team, "make_vec": vector},
    }


def acceptance(results: dict) -> dict:
    """The issue's bars, evaluated on this run's medians (None where a peer was not measured)."""
    ours = results["embodylab"]
    head = ours.get(HEADLINE_ENV, {})
    peers = results["peers"]

    def over(peer: str, key: str) -> float | None:
        return head["env_steps_per_s"] / peers[peer][key] if peer in peers and head else None

    fetch_fps = peers.get("fetch", {}).get("render_fps_64")
    rgb64 = head.get("render_fps", {}).get("64", {}).get("rgb") if head else None
    checks = {
        "pickplace_ratio_to_raw_limit": head.get("ratio_to_limit"),
        "pickplace_over_fetch": over("fetch", "env_steps_per_s"),
        "pickplace_over_robosuite_lift": over("robosuite", "env_steps_per_s"),
        "max_lab_reset_ms": max((r["reset_ms"] for i, r in ours.items() if "/Lab" in i), default=None),
        "rgb64_over_fetch_scene": rgb64 / fetch_fps if rgb64 and fetch_fps else None,
        "make_vec_speedup": max(results["make_vec"][mode]["speedup"] for mode in VECTOR_MODES),
    }
    bars = {
        "pickplace_ratio_to_raw_limit": (">=", 0.85),
        "pickplace_over_fetch": (">=", 2.0),
        "pickplace_over_robosuite_lift": (">=", 8.0),
        "max_lab_reset_ms": ("<=", 2.0),
        "rgb64_over_fetch_scene": (">=", 8.0),
        "make_vec_speedup": (">=", 1.7),
    }
    return {
        name: {
            "value": value,
            "bar": f"{op} {bar}",
            "met": None if value is None else (value >= bar if op == ">=" else value <= bar),
        }
        for name, value in checks.items()
        for op, bar in [bars[name]]
    }


def markdown(results: dict, checks: dict) -> str:
    lines = [
        "| env | env steps/s | raw-physics limit | ratio | reset (ms) | rgb 64² fps | depth 64² fps | seg 64² fps |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for env_id, r in results["embodylab"].items():
        fps = r["render_fps"].get("64", {})
        lines.append(
            f"| `{env_id}` | {r['env_steps_per_s']:,.0f} | {r['raw_limit_env_steps_per_s']:,.0f} | "
            f"{r['ratio_to_limit']:.2f} | {r['reset_ms']:.2f} | {fps.get('rgb', 0):,.0f} | "
            f"{fps.get('depth', 0):,.0f} | {fps.get('segmentation', 0):,.0f} |"
        )
    for name, r in results["peers"].items():
        fps = r.get("render_fps_64")
        lines.append(
            f"| {r.get('env_id', name)} ({name}) | {r['env_steps_per_s']:,.0f} | "
            f"{r['raw_physics_steps_per_s'] / r['substeps']:,.0f} | "
            f"{r['env_steps_per_s'] / (r['raw_physics_steps_per_s'] / r['substeps']):.2f} | "
            f"{r['reset_ms']:.1f} | {f'{fps:,.0f}' if fps else '–'} | – | – |"
        )
    pooled = {i: r["reset_pooled_ms"] for i, r in results["embodylab"].items() if "reset_pooled_ms" in r}
    if pooled:
        lines += [
            "",
            "Household resets draw a new apartment and compile it (the reset column); cycling through a pool of "
            "4 apartments, each compiled once, a reset takes "
            + ", ".join(f"{ms:.2f} ms (`{i}`)" for i, ms in pooled.items())
            + ".",
        ]
    if results.get("team"):
        lines += [
            "",
            "| TeamCarry-v0 agents | env steps/s | agent steps/s | raw-physics limit | ratio | reset (ms) | "
            "reset compiling (ms) | bodies | DoF |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n_agents, r in results["team"].items():
            lines.append(
                f"| {n_agents} | {r['env_steps_per_s']:,.0f} | {r['agent_steps_per_s']:,.0f} | "
                f"{r['raw_limit_env_steps_per_s']:,.0f} | {r['ratio_to_limit']:.2f} | {r['reset_ms']:.2f} | "
                f"{r['reset_cold_ms']:.1f} | {r['bodies']} | {r['dof']} |"
            )
    vec = results["make_vec"]
    lines.append("")
    for mode in VECTOR_MODES:
        lines.append(
            f'`make_vec("{vec["env_id"]}", {vec["num_envs"]}, mode="{mode}")`: '
            f"{vec[mode]['vec_env_steps_per_s']:,.0f} env steps/s against {vec['single_env_steps_per_s']:,.0f} "
            f"for the same envs stepped one at a time ({vec[mode]['speedup']:.2f}×)."
        )
    lines += [
        f"Raw `mujoco.rollout` of the same model, 2 threads against 1 (no Python at all): "
        f"{vec['raw_two_thread_scaling']:.2f}×.",
        "",
        "| check | value | bar | met |",
        "|---|---:|---|---|",
    ]
    for name, c in checks.items():
        value = "–" if c["value"] is None else f"{c['value']:.2f}"
        met = {True: "yes", False: "**no**", None: "not measured"}[c["met"]]
        lines.append(f"| {name} | {value} | {c['bar']} | {met} |")
    return "\n".join(lines) + "\n"


def bar_chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, rates, limits, colours = [], [], [], []
    for env_id, r in results["embodylab"].items():
        names.append(env_id.removeprefix("embodylab/").removesuffix("-v0"))
        rates.append(r["env_steps_per_s"])
        limits.append(r["raw_limit_env_steps_per_s"])
        colours.append("tab:blue")
    for name, r in results["peers"].items():
        names.append(PEER_LABELS.get(name, name))
        rates.append(r["env_steps_per_s"])
        limits.append(r["raw_physics_steps_per_s"] / r["substeps"])
        colours.append("tab:gray")
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 4))
    ax.bar(x, limits, color="none", edgecolor="black", linestyle="--", label="raw-physics limit")
    ax.bar(x, rates, color=colours, label="env steps/s (blue: embodylab, grey: peers)")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("env steps / s (state obs, random actions)")
    ax.set_title("Single-env throughput on this machine (median of repeats)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main(config: ThroughputConfig) -> None:
    configure_gl_backend()
    results = measure(config)
    checks = acceptance(results)
    table = markdown(results, checks)
    print(table)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    (config.out.with_suffix(".md")).write_text(table)
    bar_chart(results, config.out.with_suffix(".png"))
    write_json(
        config.out,
        {
            "machine": machine_info(),
            "config": {**asdict(config), "out": str(config.out)},
            **results,
            "acceptance": checks,
            "method": __doc__,
        },
    )


if __name__ == "__main__":
    main(tyro.cli(ThroughputConfig))
