"""Apartments are seeded and furnished; each predicate holds in a scene built for it and not in one built
against it; the oracle planner finds the operator sequence a task needs."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from embodylab.core.mujoco_backend import MujocoScene
from embodylab.envs.household.apartment import CATEGORIES, generate_apartment
from embodylab.skills.household import plan


def test_same_seed_gives_the_same_apartment_and_seeds_differ():
    a, b, c = generate_apartment(3), generate_apartment(3), generate_apartment(4)
    assert a.scene == b.scene
    assert a.scene != c.scene


@pytest.mark.parametrize("seed", range(4))
def test_apartments_are_furnished_and_start_without_penetration(seed):
    apt = generate_apartment(seed)
    assert 2 <= len(apt.rooms) <= 4 and apt.rooms[0].kind == "kitchen"
    categories = {f.category for f in apt.fixtures}
    assert {"counter", "table", "shelf", "cabinet", "chest_of_drawers", "fridge", "microwave"} <= categories
    sim = MujocoScene(apt.scene)
    mujoco.mj_forward(sim.model, sim.data)
    assert all(sim.data.contact[i].dist > -1e-3 for i in range(sim.data.ncon))
    assert len(apt.doors) == len(apt.rooms) - 1


def test_there_are_at_least_twenty_named_object_categories():
    assert len({c.name for c in CATEGORIES}) >= 20
    assert all(c.colours for c in CATEGORIES)


@pytest.fixture
def env():
    env = gym.make("embodylab/HouseholdStow-v0", apartment_seed=2)
    env.reset(seed=0)
    return env.unwrapped


def _settle(u, steps=1):
    mujoco.mj_forward(u.model, u.data)
    u._atoms_time = -1.0
    atoms = u.predicates()
    assert atoms == u.symbolic.atoms_reference()  # the vectorised atoms match the per-object definition
    return atoms


@pytest.mark.parametrize("apartment_seed", [0, 3, 7])
def test_vectorised_atoms_match_the_per_object_predicates_along_rollouts(apartment_seed):
    env = gym.make("embodylab/HouseholdTidy-v0", apartment_seed=apartment_seed)
    env.reset(seed=apartment_seed)
    u = env.unwrapped
    rng = np.random.default_rng(apartment_seed)
    kinds = set()
    for _ in range(60):
        env.step(rng.uniform(-1, 1, size=env.action_space.shape))
        atoms = u.symbolic.atoms()
        assert atoms == u.symbolic.atoms_reference()
        kinds |= {a[0] for a in atoms}
    assert {"on", "in_room", "closed"} <= kinds  # the comparison covered these predicates


def _set_object(u, name, pos):
    index = u.sim.object_names.index(name)
    u.sim.set_object_pose(index, pos)


def test_on_holds_for_a_resting_object_and_not_for_a_lifted_one(env):
    u = env
    obj = u.apartment.objects[0].name
    surface = u.apartment.object_surfaces[0].split("/")[0]
    assert ("on", obj, surface) in _settle(u)
    pos = u.data.xpos[u.model.body(obj).id].copy()
    _set_object(u, obj, pos + [0, 0, 0.2])
    assert not any(a[0] == "on" and a[1] == obj for a in _settle(u))


def test_open_and_closed_follow_the_joint(env):
    u = env
    part = "chest_of_drawers/top_drawer"
    adr = u.model.jnt_qposadr[u.sim.fixture_joint_ids[part]]
    atoms = _settle(u)
    assert ("closed", part) in atoms and ("open", part) not in atoms
    u.data.qpos[adr] = 0.28
    atoms = _settle(u)
    assert ("open", part) in atoms and ("closed", part) not in atoms
    door = "fridge/door"
    u.data.qpos[u.model.jnt_qposadr[u.sim.fixture_joint_ids[door]]] = 1.5
    assert ("open", door) in _settle(u)


def test_in_holds_inside_an_open_drawer_and_not_on_the_floor(env):
    u = env
    part = "chest_of_drawers/top_drawer"
    u.data.qpos[u.model.jnt_qposadr[u.sim.fixture_joint_ids[part]]] = 0.28
    mujoco.mj_forward(u.model, u.data)
    _, body, centre, half = next(c for c in u.symbolic.containers if c[0] == part)
    inside = u.data.xpos[body] + u.data.xmat[body].reshape(3, 3) @ (centre + [0.05, 0, -half[2] + 0.05])
    obj = u.apartment.objects[1].name
    _set_object(u, obj, inside)
    assert ("in", obj, part) in _settle(u)
    _set_object(u, obj, (*u.apartment.rooms[0].centre, 0.05))
    assert not any(a[0] == "in" and a[1] == obj for a in _settle(u))


def test_at_and_in_room_follow_the_base(env):
    u = env
    place = u.apartment.fixtures[0]
    u.base.reset(*place.place, 0.8)
    atoms = _settle(u)
    assert ("at", "robot", place.name) in atoms and ("in_room", "robot", place.room) in atoms
    other = u.apartment.rooms[-1]
    u.base.reset(*other.centre, 0.0, 0.8)
    atoms = _settle(u)
    assert not any(a[0] == "at" for a in atoms)
    assert ("in_room", "robot", other.name) in atoms and ("in_room", "robot", place.room) not in atoms


def test_holding_needs_both_fingers_on_the_object(env):
    u = env
    obj = u.apartment.objects[2].name
    assert ("holding", obj) not in _settle(u)
    # Put the object between the open fingers, then close them under physics.
    _set_object(u, obj, u.arm.tcp_pos.copy())
    mujoco.mj_forward(u.model, u.data)
    u.arm.set_gripper(-1.0)
    for _ in range(100):
        mujoco.mj_step(u.model, u.data)
    assert ("holding", obj) in _settle(u)
    u.arm.set_gripper(1.0)
    for _ in range(200):
        mujoco.mj_step(u.model, u.data)
    assert ("holding", obj) not in _settle(u)


def test_planner_orders_open_place_close_for_a_stow_goal(env):
    u = env
    obj = u.apartment.objects[0].name
    steps = plan(u.predicates(), {("in", obj, "chest_of_drawers/top_drawer"), ("closed", "chest_of_drawers/top_drawer")},
                 u.scene_graph())  # fmt: skip
    skills = [s.skill for s in steps]
    assert skills == ["navigate", "open", "navigate", "pick", "navigate", "place", "close"]
    assert str(steps[1]) == "open(chest_of_drawers/top_drawer)"


def test_planner_reports_an_unreachable_goal(env):
    assert plan(env.predicates(), {("on", "no_such_mug", "table")}, env.scene_graph()) is None


def test_an_operator_naming_an_unknown_skill_is_an_error():
    from embodylab.skills.household import Operator

    with pytest.raises(ValueError, match="unknown skill 'wipe'"):
        Operator("wipe", (("?s", "surface"),), (), (), (), "wipe", ("?s",))


def test_an_operator_passing_a_variable_it_does_not_bind_is_an_error():
    from embodylab.skills.household import Operator

    with pytest.raises(ValueError, match="passes"):
        Operator("pick", (("?obj", "object"),), (), (), (), "pick", ("?from",))
