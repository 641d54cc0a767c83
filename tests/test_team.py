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
    import embodylab.envs.team.render as team_render
    from embodylab.cli import main

    # 30-step episodes keep the test fast; the scripted team's success is tested through `rollout`.
    monkeypatch.setattr(team_render, "make", lambda *a, **kw: make(*a, **kw, max_episode_steps=30))
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

    from embodylab.skills.experts import assign_handles

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
