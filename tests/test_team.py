"""TeamCarry-v0: PettingZoo API and seeding, physics of lifting, grips, scripted team, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from embodylab.envs.team import TeamCarryEnv, make
from embodylab.envs.team.carry import LIFTED_CLEARANCE
from embodylab.envs.team.layout import ROLE_PARAMS
from embodylab.skills.experts import TeamCarryExpert, rollout


def _play(env: TeamCarryEnv, seed: int, steps: int) -> TeamCarryEnv:
    """Runs the scripted team for at most `steps` control steps; returns the env at the end."""
    expert = TeamCarryExpert(env)
    env.reset(seed=seed)
    expert.reset()
    while env.agents and env.steps < steps:
        env.step(expert.act())
    return env


@pytest.mark.parametrize("n_agents", [1, 2, 4, 8])
def test_parallel_api(n_agents):
    parallel_api_test(make("TeamCarry-v0", n_agents=n_agents, max_episode_steps=60), num_cycles=80)


@pytest.mark.parametrize("n_agents", [1, 2, 4, 8])
def test_parallel_seed(n_agents):
    parallel_seed_test(lambda: make("TeamCarry-v0", n_agents=n_agents), num_cycles=40)


def test_observations_have_one_layout_for_every_team_size():
    shapes = set()
    for n in (1, 3, 8):
        env = make("TeamCarry-v0", n_agents=n)
        obs, _ = env.reset(seed=0)
        shapes.add(env.observation_space("agent_0").shape)
        for agent, o in obs.items():
            assert env.observation_space(agent).contains(o)
        assert env.state().shape == env.state_space.shape
    assert len(shapes) == 1


@pytest.mark.parametrize(("n_agents", "k"), [(1, 2), (2, 3), (3, 4)])
def test_team_smaller_than_k_cannot_lift(n_agents, k):
    for seed in range(2):
        env = _play(make("TeamCarry-v0", n_agents=n_agents, k=k), seed, steps=220)
        assert env.gripping.all(), "the weak team should have gripped every handle and tried to lift"
        assert env.metrics()["max_lift_height"] < LIFTED_CLEARANCE
        assert not env.metrics()["lifted"]
        if n_agents > 1:  # what holds the payload down is the lift actuators' force range, all at its limit
            forces = env.data.actuator_force[env.ids.lift_actuators]
            np.testing.assert_allclose(forces, ROLE_PARAMS["human"].lift_force, rtol=1e-3)


def test_team_of_k_lifts_the_same_payload():
    env = _play(make("TeamCarry-v0", n_agents=3, k=3), seed=0, steps=220)
    assert env.metrics()["lifted"]


@pytest.mark.parametrize(("n_agents", "seed"), [(2, 0), (2, 1), (4, 2), (6, 3)])
def test_scripted_team_carries_payload_to_goal(n_agents, seed):
    env = make("TeamCarry-v0", n_agents=n_agents)
    assert rollout(env, seed)
    metrics = env.metrics()
    assert metrics["final_distance"] < 0.1 and metrics["yaw_error_deg"] < 15.0
    assert metrics["cooperation_time"] > 0.9


def test_mixed_human_robot_team_succeeds():
    assert rollout(make("TeamCarry-v0", n_agents=2, roles=("robot", "human")), seed=4)


def test_hands_grip_only_within_reach():
    env = make("TeamCarry-v0", n_agents=2)
    env.reset(seed=0)
    grip = np.array([0, 0, 0, 0, 1.0], np.float32)
    env.step({a: grip for a in env.agents})
    assert not env.gripping.any()


def test_grip_breaks_when_force_exceeds_limit():
    env = make("TeamCarry-v0", n_agents=2)
    expert = TeamCarryExpert(env)
    env.reset(seed=0)
    expert.reset()
    while expert.phase == "approach":
        env.step(expert.act())
    assert env.gripping.all()
    backwards = np.array([-1.0, 0.0, 0.0, 0.0, 1.0], np.float32)  # walk away holding on
    for _ in range(25):
        env.step({a: backwards for a in env.agents})
    assert not env.gripping.any()
    env.step({a: backwards for a in env.agents})  # still closed: a broken grip needs a re-press
    assert not env.gripping.any()


def test_same_seed_same_trajectory_and_different_seeds_differ():
    finals = []
    for seed in (3, 3, 4):
        env = _play(make("TeamCarry-v0", n_agents=3), seed, steps=150)
        finals.append(np.concatenate([env.data.qpos, env.data.qvel]))
    assert np.array_equal(finals[0], finals[1])
    assert finals[0].shape != finals[2].shape or not np.allclose(finals[0], finals[2])


@pytest.mark.parametrize(("value", "entry"), [(np.nan, 3), (np.inf, 0), (-np.inf, 4)])
def test_non_finite_action_names_agent_and_entry(value, entry):
    env = make("TeamCarry-v0", n_agents=2)
    env.reset(seed=0)
    action = np.zeros(5, np.float32)
    action[entry] = value
    with pytest.raises(ValueError, match=rf"agent_1 .*entry {entry}"):
        env.step({"agent_0": np.zeros(5, np.float32), "agent_1": action})


def test_bad_action_shape_and_agent_are_rejected():
    env = make("TeamCarry-v0", n_agents=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step({"agent_0": np.zeros(3)})
    with pytest.raises(ValueError, match="agent_7.*agent_0, agent_1"):
        env.step({"agent_7": np.zeros(5)})


def test_out_of_range_actions_are_clipped():
    states = []
    for scale in (1.0, 7.0):
        env = make("TeamCarry-v0", n_agents=2)
        env.reset(seed=1)
        for _ in range(5):
            env.step({a: scale * np.array([1.0, -1.0, 1.0, 1.0, -1.0]) for a in env.agents})
        states.append(env.state())
    np.testing.assert_array_equal(states[0], states[1])


def test_unknown_id_and_bad_team_size_are_rejected():
    with pytest.raises(ValueError, match="TeamCarry-v0"):
        make("TeamLift-v0", n_agents=2)
    for n in (0, 9):
        with pytest.raises(ValueError, match=r"n_agents must be in 1\.\.8"):
            make("TeamCarry-v0", n_agents=n)
    with pytest.raises(ValueError, match="valid roles: human, robot"):
        make("TeamCarry-v0", n_agents=1, roles=("alien",))


def test_import_embodylab_does_not_import_pettingzoo():
    code = "import sys, embodylab; print('pettingzoo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_renders_a_team_episode(capsys, tmp_path, monkeypatch):
    import embodylab.envs.team as team
    from embodylab.cli import main

    # 30-step episodes keep the test fast; the scripted team's success is tested through `rollout`.
    monkeypatch.setattr(team, "make", lambda *a, **kw: make(*a, **kw, max_episode_steps=30))
    video = tmp_path / "team.gif"
    main(["render", "team", "--agents", "3", "--policy", "scripted", "--out", str(video), "--size", "48"])
    out = capsys.readouterr().out
    assert "episode seed=0: failure after 30 steps" in out
    assert video.exists() and (tmp_path / "team_contact.png").exists()


def test_cli_team_render_rejects_unknown_camera(capsys, tmp_path):
    from embodylab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["render", "team", "--camera", "wrist", "--out", str(tmp_path / "t.mp4")])
    assert exit_.value.code == 2
    assert "valid cameras: follow, overview" in capsys.readouterr().err


def test_handle_assignment_is_the_minimum_cost_matching():
    import itertools

    from embodylab.skills.experts.team import assign_handles

    cost = np.random.default_rng(0).uniform(0, 5, (6, 6))
    best = min(itertools.permutations(range(6)), key=lambda p: sum(cost[i, p[i]] for i in range(6)))
    np.testing.assert_array_equal(assign_handles(cost), best)


def test_planned_path_keeps_the_team_clear_of_obstacles_and_walls():
    from embodylab.envs.team.planning import plan_path

    obstacles = [((0.0, 0.0), 0.5)]
    path = plan_path((-3.0, 0.0), (3.0, 0.0), obstacles, clearance=1.5, room_half=6.0)
    assert path is not None and len(path) > 2  # the straight line is blocked: the path bends
    for a, b in zip(path[:-1], path[1:], strict=False):
        for t in np.linspace(0, 1, 50):
            p = a + t * (b - a)
            assert np.linalg.norm(p) >= 0.5 + 1.5 - 1e-6
            assert np.all(np.abs(p) <= 6.0 - 1.5 + 1e-6)


def _model_fields(model) -> dict[str, np.ndarray]:
    fields = {k: getattr(model, k) for k in dir(model) if isinstance(getattr(model, k, None), np.ndarray)}
    fields.update(
        {
            f"stat.{k}": np.asarray(getattr(model.stat, k))
            for k in ("meaninertia", "meanmass", "meansize", "extent")
        }
    )
    return fields


def test_reset_writes_the_model_a_fresh_compile_would_build():
    from embodylab.envs.team.scene import compile_scene

    env = make("TeamCarry-v0", n_agents=3)
    warm = 0
    for seed in range(12):
        topologies = len(env._scenes)
        env.reset(seed=seed)
        if len(env._scenes) == topologies:  # no compile: this layout was written into a cached model
            warm += 1
            fresh, _ = compile_scene(env.layout, env.model.opt.timestep)
            ours, theirs = _model_fields(env.model), _model_fields(fresh)
            assert ours.keys() == theirs.keys()
            for name, value in theirs.items():
                np.testing.assert_allclose(
                    ours[name], value, rtol=1e-12, atol=1e-12, err_msg=f"seed {seed}: {name}"
                )
    assert warm >= 4 and len(env._scenes) < 12


def test_warm_reset_gives_the_trajectory_of_a_cold_one():
    def trajectory(env, seed):
        _play(env, seed, steps=120)
        return np.concatenate([env.data.qpos, env.data.qvel, env.state()])

    seed = 5
    cold = trajectory(make("TeamCarry-v0", n_agents=4), seed)
    env = make("TeamCarry-v0", n_agents=4)
    for other in range(8):  # compiles every topology these seeds meet, then replays `seed` warm
        env.reset(seed=other)
    assert np.array_equal(trajectory(env, seed), cold)
    assert np.array_equal(trajectory(env, seed), cold)


def _reference_observation(env: TeamCarryEnv, i: int) -> np.ndarray:
    """Agent i's observation written out entry by entry from the module docstring's layout."""
    d, ids, m = env.data, env.ids, env.max_agents
    base, vel = env.base_poses(), d.qvel[ids.base_qvel]
    x, y, yaw = base[i]
    c, s = np.cos(yaw), np.sin(yaw)

    def local(v):
        return [c * v[0] + s * v[1], -s * v[0] + c * v[1]]

    pos, rot = d.xpos[ids.payload_body], d.xmat[ids.payload_body].reshape(3, 3)
    p_yaw = np.arctan2(rot[1, 0], rot[0, 0])
    p_vel = d.qvel[ids.payload_qvel : ids.payload_qvel + 6]
    gx, gy, gyaw = env.layout.goal
    grip = env.gripping.astype(float)
    own = [x / env.room_half, y / env.room_half, s, c, *local(vel[i, :2]), vel[i, 2]]
    own += [0.75 + d.qpos[ids.lift_qpos[i]], d.qvel[ids.lift_qvel[i]], *grip[i], env.roles[i] == "robot"]
    own += [1.0 - env.steps / env.max_episode_steps]
    shape = [float(env.layout.shape == k) for k in ("table", "box", "sofa")]
    payload = [*local(pos[:2] - base[i, :2]), pos[2], np.sin(p_yaw - yaw), np.cos(p_yaw - yaw)]
    payload += [*local(p_vel[:2]), p_vel[2], p_vel[5], *env.layout.half_extents, *shape]
    goal_rel = np.array([gx, gy]) - pos[:2]
    in_payload = [
        np.cos(p_yaw) * goal_rel[0] + np.sin(p_yaw) * goal_rel[1],
        -np.sin(p_yaw) * goal_rel[0] + np.cos(p_yaw) * goal_rel[1],
    ]
    goal = [*local(np.array([gx, gy]) - base[i, :2]), np.sin(gyaw - yaw), np.cos(gyaw - yaw), *in_payload]
    goal += [np.sin(gyaw - p_yaw), np.cos(gyaw - p_yaw)]
    centres, half = env.handle_segments()
    hands = env.hand_positions()
    taken = set()
    for a in range(env.n_agents):
        for side in range(2):
            if env.gripping[a, side]:
                dist = []
                for k in range(len(centres)):
                    rel = hands[a, side] - centres[k]
                    t = np.clip(rel @ half[k] / (half[k] @ half[k]), -1, 1)
                    dist.append(np.linalg.norm(rel - t * half[k]))
                taken.add(int(np.argmin(dist)))
    handles, mask = [], []
    for k in range(m):
        if k < len(centres):
            normal = rot @ np.array([*env.layout.handles[k].normal, 0.0])
            handles += [*local(centres[k, :2] - base[i, :2]), centres[k, 2], *local(normal), k in taken]
        else:
            handles += [0.0] * 6
        mask.append(float(k < len(centres)))
    others, other_mask = [], []
    for j in range(1, m):
        if j < env.n_agents:
            o = (i + j) % env.n_agents
            others += [*local(base[o, :2] - base[i, :2]), np.sin(base[o, 2] - yaw), np.cos(base[o, 2] - yaw)]
            others += [*local(vel[o, :2]), grip[o].any(), env.roles[o] == "robot"]
        else:
            others += [0.0] * 8
        other_mask.append(float(j < env.n_agents))
    obstacles, obstacle_mask = [], []
    for k in range(4):
        if k < len(env.layout.obstacles):
            o = env.layout.obstacles[k]
            obstacles += [*local(np.array(o.pos) - base[i, :2]), o.radius]
        else:
            obstacles += [0.0] * 3
        obstacle_mask.append(float(k < len(env.layout.obstacles)))
    parts = [own, payload, goal, handles, mask, others, other_mask, obstacles, obstacle_mask]
    return np.array([float(v) for part in parts for v in part], np.float32)


@pytest.mark.parametrize("n_agents", [1, 3, 8])
def test_observations_match_a_per_agent_reference(n_agents):
    env = make("TeamCarry-v0", n_agents=n_agents)
    expert = TeamCarryExpert(env)
    gripped = False
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        for step in range(240):
            if step % 40 == 0:
                gripped |= bool(env.gripping.any())
                for i, agent in enumerate(env.agents):
                    np.testing.assert_allclose(
                        obs[agent], _reference_observation(env, i), rtol=1e-5, atol=1e-5
                    )
            obs, *_ = env.step(expert.act())
    assert gripped  # the handles-taken entries were compared too


def test_path_exists_agrees_with_the_planner():
    from embodylab.envs.team.planning import path_exists, plan_path

    rng = np.random.default_rng(0)
    found = []
    for _ in range(40):
        count = int(rng.integers(1, 4))
        obstacles = [
            ((float(x), float(y)), float(r))
            for x, y, r in rng.uniform((-5, -5, 0.2), (5, 5, 1.2), (count, 3))
        ]
        start, goal = rng.uniform(-4, 4, (2, 2))
        clearance = float(rng.uniform(0.8, 2.5))
        exists = path_exists(start, goal, obstacles, clearance, 6.0)
        assert exists == (plan_path(start, goal, obstacles, clearance, 6.0) is not None)
        found.append(exists)
    assert any(found) and not all(found)
