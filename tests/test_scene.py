"""SceneSpec compiles through MjSpec and reads back the object-centric state contract."""

import subprocess
import sys

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from embodylab.core.mujoco_backend import MujocoScene
from embodylab.core.scene import ObjectSpec, SceneSpec


def _scene_with(*objects):
    return MujocoScene(SceneSpec(objects=list(objects), robot=None, goal_marker=False))


def test_object_states_have_the_contract_layout():
    scene = _scene_with(
        ObjectSpec("red_cube", "cube", "box", (0.02, 0.03, 0.04), pos=(0.1, 0.2, 0.04)),
        ObjectSpec("ball", "ball", "sphere", (0.03, 0.03, 0.03), pos=(-0.1, 0.0, 0.03)),
    )
    states = scene.object_states()
    assert states.names == ["red_cube", "ball"] and states.categories == ["cube", "ball"]
    assert states.features.shape == (2, 16) and states.features.dtype == np.float32
    np.testing.assert_allclose(states["red_cube"][0:3], [0.1, 0.2, 0.04], atol=1e-6)
    np.testing.assert_allclose(states["red_cube"][3:7], [1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(states["red_cube"][13:16], [0.02, 0.03, 0.04])


def test_object_velocities_are_world_frame():
    scene = _scene_with(
        ObjectSpec("cube", "cube", pos=(0.0, 0.0, 0.5), quat=(0.7071068, 0.7071068, 0.0, 0.0))
    )
    scene.data.qvel[0:6] = [0.3, -0.2, 0.1, 1.0, 2.0, 3.0]
    mujoco.mj_forward(scene.model, scene.data)
    features = scene.object_states().features[0]
    reference = np.zeros(6)
    body = scene.model.body("cube").id
    mujoco.mj_objectVelocity(scene.model, scene.data, mujoco.mjtObj.mjOBJ_BODY, body, reference, 0)
    np.testing.assert_allclose(features[7:10], reference[3:6], atol=1e-5)
    np.testing.assert_allclose(features[10:13], reference[0:3], atol=1e-5)
    np.testing.assert_allclose(features[10:13], [1.0, -3.0, 2.0], atol=1e-5)


def test_objects_fall_onto_the_table_under_physics():
    scene = _scene_with(ObjectSpec("cube", "cube", half_extents=(0.02, 0.02, 0.02), pos=(0.0, 0.0, 0.3)))
    mujoco.mj_step(scene.model, scene.data, nstep=1000)
    z = scene.object_states().features[0, 2]
    assert abs(z - 0.02) < 0.002


@pytest.mark.parametrize(
    "objects, message",
    [
        ([ObjectSpec("a", "cube"), ObjectSpec("a", "cube")], "repeated"),
        ([ObjectSpec("a", "cube", mass=0.0)], "mass"),
        ([ObjectSpec("a", "cube", half_extents=(0.0, 0.1, 0.1))], "half_extents"),
    ],
)
def test_invalid_scene_specs_are_rejected(objects, message):
    with pytest.raises(ValueError, match=message):
        _scene_with(*objects)


def test_object_states_of_an_env_match_its_objects():
    env = gym.make("embodylab/LabStack-v0")
    env.reset(seed=0)
    states = env.unwrapped.object_states()
    assert len(states) >= 2 and states.features.shape == (len(states), 16)


def test_reset_writes_state_without_recompiling():
    env = gym.make("embodylab/LabPickPlace-v0")
    env.reset(seed=0)
    model = env.unwrapped.model
    env.reset(seed=1)
    assert env.unwrapped.model is model


def test_import_registers_ids_quickly_without_heavy_dependencies():
    code = (
        "import time, sys; t = time.perf_counter(); import embodylab; dt = time.perf_counter() - t;"
        "import gymnasium as gym; assert 'embodylab/LabPegInsert-v0' in gym.registry;"
        "heavy = [m for m in ('torch', 'open3d', 'pybullet') if m in sys.modules];"
        "print(dt, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, heavy = out.split(" ", 1)
    assert heavy.strip() == "[]"
    assert float(seconds) < 1.0
