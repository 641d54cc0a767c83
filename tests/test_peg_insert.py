"""LabPegInsert: the expert inserts the tube, the clearance is honest (a real cylinder in a hole at most
5 mm wider), the goal reward is vectorised, resets are seeded and at rest, and success means depth."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import embodylab  # noqa: F401  (registers the ids)
from embodylab.envs.lab.peg_insert import PEG_HALF_LENGTH, PEG_RADIUS, RACK_HEIGHT
from embodylab.skills.experts import rollout

ENV_ID = "embodylab/LabPegInsert-v0"


def tube_position(env) -> np.ndarray:
    return env.unwrapped.object_states().features[0, 0:3].copy()


def hole_width(env) -> list[float]:
    """Distances (m) between the opposite walls' inner faces, along the rack's own x and y."""
    m = env.unwrapped.model
    widths = []
    for axis in (0, 1):
        near, far = (m.geom(f"rack/base/wall_{'xy'[axis]}{i}") for i in (1, 0))
        widths.append(float((far.pos[axis] - far.size[axis]) - (near.pos[axis] + near.size[axis])))
    return widths


def test_expert_inserts_the_tube_on_at_least_9_of_10_seeds():
    env = gym.make(ENV_ID)
    assert sum(rollout(env, seed) for seed in range(10)) >= 9


def test_tube_collides_as_a_cylinder_and_the_hole_leaves_at_most_5mm_clearance():
    env = gym.make(ENV_ID)
    m = env.unwrapped.model
    tube = m.geom("tube")
    assert tube.type[0] == mujoco.mjtGeom.mjGEOM_CYLINDER
    np.testing.assert_allclose(tube.size[:2], [PEG_RADIUS, PEG_HALF_LENGTH])
    for width in hole_width(env):
        assert 0.0 < width - 2 * PEG_RADIUS <= 0.005


def test_rack_is_static():
    env = gym.make(ENV_ID)
    u = env.unwrapped
    rack = u.model.body("rack/base")
    assert rack.jntnum[0] == 0 and rack.parentid[0] == 0
    assert u.object_states().names == ["tube"]


def place_tube(env, xy, bottom_z) -> bool:
    """Put the tube upright with its bottom at `bottom_z`, let it settle 0.2 s; return `is_success`."""
    u = env.unwrapped
    u.sim.set_object_pose(0, [*xy, bottom_z + PEG_HALF_LENGTH])
    mujoco.mj_forward(u.model, u.data)
    info = {}
    for _ in range(5):
        _, _, _, _, info = env.step(np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32))
    return info["is_success"]


def test_a_tube_dropped_into_the_hole_succeeds_and_one_on_the_rim_does_not():
    env = gym.make(ENV_ID)
    env.reset(seed=4)
    hole = env.unwrapped.goal.copy()
    assert place_tube(env, hole[:2], 0.0)
    np.testing.assert_allclose(env.unwrapped._achieved_goal(), hole, atol=3e-3)  # it fits, upright
    env.reset(seed=4)
    assert not place_tube(env, hole[:2] + [0.02, 0.0], RACK_HEIGHT)  # resting across the hole's edge


def test_reset_distribution_is_seeded():
    env = gym.make(ENV_ID)
    env.reset(seed=7)
    first = np.concatenate([tube_position(env), env.unwrapped.goal])
    env.reset(seed=8)
    other = np.concatenate([tube_position(env), env.unwrapped.goal])
    env.reset(seed=7)
    np.testing.assert_array_equal(first, np.concatenate([tube_position(env), env.unwrapped.goal]))
    assert not np.allclose(first, other)


@pytest.mark.parametrize("seed", range(5))
def test_tube_starts_upright_on_the_table_away_from_the_rack_without_penetration(seed):
    env = gym.make(ENV_ID)
    env.reset(seed=seed)
    u = env.unwrapped
    start = tube_position(env)
    assert start[2] == pytest.approx(PEG_HALF_LENGTH)
    np.testing.assert_allclose(u._achieved_goal()[2], 0.0, atol=1e-9)
    assert np.linalg.norm(start[:2] - u.goal[:2]) >= 0.15
    np.testing.assert_allclose(u.model.body("rack/base").pos[:2], u.goal[:2])
    assert all(u.data.contact[i].dist > -1e-4 for i in range(u.data.ncon))
    env.step(np.zeros(4, dtype=np.float32))
    assert np.abs(tube_position(env) - start).max() < 1e-3
