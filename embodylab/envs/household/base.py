"""`HouseholdEnv`: the base of the household tasks — a mobile Panda in a procedurally generated apartment.

Every episode takes place in the apartment of one seed: `reset(seed=s)` draws the apartment seed from the
episode's generator (or uses the env's `apartment_seed`, or `reset(options={"apartment_seed": n})`), compiles
it when it differs from the current one, and lets the task draw a goal. `env.unwrapped.model`/`data` are
therefore replaced when the apartment changes; the observation space is the same for every apartment (each
holds `N_OBJECTS` objects and the same six doors and drawers).

Actions, normalised to [-1, 1] (out-of-range entries are clipped, NaN/inf raise `ValueError`):

- `ee_delta_pos` (9): base velocity (vx, vy forward/left in the base frame, yaw rate), lift step, tool-centre
  step (dx, dy, dz in the base frame, up to `ControllerConfig.max_ee_delta` m), hand yaw step (up to
  `MAX_HAND_YAW_STEP` rad about the vertical, the hand always points down), gripper (-1 closed, +1 open);
- `joint_delta_pos` (12): base velocity (3), lift step, seven arm joint steps, gripper.

State observation: base proprio 8 (x, y, yaw, lift and their rates), arm proprio 21, object features
16 per object (the free objects, then the doors and drawers), goal vector `MAX_GOAL_ATOMS` (1 per goal
atom, 0 padding). `info` carries `is_success` (every goal atom holds), `goal_distance` (the number of goal
atoms that do not hold), `predicates` (the set of atoms that hold, `predicates.py`), `goal` (the goal atoms)
and `instruction` (the goal in English). With `goal_conditioned=True`, achieved goal = which goal atoms
hold (1/0), desired goal = the goal vector.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces

from embodylab.core.control import MobileBase, PandaArm
from embodylab.core.geometry import yaw_to_quat
from embodylab.core.mujoco_backend import MujocoScene
from embodylab.core.scene import ObjectSpec
from embodylab.envs.base import EmbodiedEnv
from embodylab.envs.household.apartment import Apartment, generate_apartment
from embodylab.envs.household.predicates import Atom, SymbolicState

MAX_GOAL_ATOMS = 6
MAX_HAND_YAW_STEP = 0.1
"""radians per control step at a hand-yaw command of 1"""
HAND_YAW_LIMIT = 1.6
"""radians either side of the base's heading"""


@dataclass(frozen=True)
class PartJoint:
    """The joint of a door or drawer at one instant (world frame): `position` and its range `low`..`high`
    (m for a drawer's slide, rad for a door's hinge), the joint `axis` (unit) and its `anchor` point (m)."""

    position: float
    low: float
    high: float
    slide: bool
    axis: np.ndarray
    anchor: np.ndarray


class HouseholdEnv(EmbodiedEnv):
    """Base of the household tasks (see the module docstring). A task overrides `_sample_goal`."""

    cameras = ("head", "overhead", "corner", "wrist")
    reset_option_keys = ("apartment_seed",)
    proprio_dim = MobileBase.PROPRIO_DIM + PandaArm.PROPRIO_DIM
    apartment_cache_size = 8
    """compiled apartments kept for resets that return to them (0: recompile on every switch)"""

    def __init__(
        self,
        obs_mode: str = "state",
        control_mode: str = "ee_delta_pos",
        render_mode: str | None = None,
        goal_conditioned: bool = False,
        reward_type: str = "dense",
        image_size: int = 64,
        camera: str = "head",
        render_size: int = 256,
        apartment_seed: int | None = None,
    ):
        if apartment_seed is not None and (
            not isinstance(apartment_seed, int | np.integer) or apartment_seed < 0
        ):
            raise ValueError(f"apartment_seed must be None or a non-negative int; got {apartment_seed!r}")
        self.apartment_seed = apartment_seed
        self._apartment_cache: OrderedDict[int, tuple] = OrderedDict()
        self.apartment: Apartment = generate_apartment(0 if apartment_seed is None else int(apartment_seed))
        self.goal_atoms: list[Atom] = []
        self.instruction = ""
        self.hand_yaw = 0.0
        super().__init__(
            obs_mode=obs_mode,
            control_mode=control_mode,
            render_mode=render_mode,
            goal_conditioned=goal_conditioned,
            reward_type=reward_type,
            image_size=image_size,
            camera=camera,
            render_size=render_size,
        )
        n_action = 9 if control_mode == "ee_delta_pos" else 12
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n_action,), dtype=np.float32)
        self._action_shape = self.action_space.shape

    # ---- task hooks -------------------------------------------------------------------------------
    def _sample_goal(self) -> tuple[list[Atom], str]:
        """The episode's goal atoms (at most `MAX_GOAL_ATOMS`) and its instruction, drawn from np_random."""
        raise NotImplementedError

    # ---- scene and episode ------------------------------------------------------------------------
    def _load_scene(self):
        return self.apartment.scene

    def _init_episode_state(self) -> None:
        self._bind_robot()
        # The construction-time draw of a goal stays in the apartment that was compiled for it.
        self._episode_options = {"apartment_seed": self.apartment.seed}
        super()._init_episode_state()
        self._episode_options = {}

    def _bind_robot(self) -> None:
        """Controllers and the symbolic layer of the compiled apartment in `self.sim`."""
        self.base = MobileBase(
            self.model, self.data, self.sim.base_names, self.apartment.scene.robot.mobile_base
        )
        self.symbolic = SymbolicState(self.apartment, self.sim, self.arm, self.base)
        self._atoms_time = -1.0
        self._atoms: set[Atom] = set()

    def _switch_apartment(self, seed: int) -> None:
        """Make the apartment of `seed` current and rebind everything that points into the old model.

        The last `apartment_cache_size` compiled apartments are kept (model, data and controllers), so
        training on a pool of apartments (`reset(options={"apartment_seed": k})`) compiles each once; a reset
        always rewrites the whole state (`mj_resetData`), so a cached apartment starts like a fresh one."""
        cache = self._apartment_cache
        cache.setdefault(self.apartment.seed, (self.apartment, self.sim, self.arm))  # the one being left
        if seed not in cache:
            apartment = generate_apartment(seed)
            sim = MujocoScene(apartment.scene)
            cache[seed] = (
                apartment,
                sim,
                PandaArm(sim.model, sim.data, sim.robot_names, apartment.scene.robot.home_qpos),
            )
        cache.move_to_end(seed)
        self.apartment, self.sim, self.arm = cache[seed]
        self.model, self.data = self.sim.model, self.sim.data
        while len(cache) > self.apartment_cache_size:  # least recently used first
            cache.popitem(last=False)
        for renderer in (self._obs_renderer, self._frame_renderer):
            if renderer is not None:
                renderer.close()
        self._obs_renderer = self._frame_renderer = None
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
        self._bind_robot()

    def _reset_simulation(self) -> None:
        seed = self._episode_options.get("apartment_seed", self.apartment_seed)
        if seed is None:
            seed = int(self.np_random.integers(2**31 - 1))
        if int(seed) != self.apartment.seed:
            self._switch_apartment(int(seed))
        mujoco.mj_resetData(self.model, self.data)
        mount = self.apartment.scene.robot
        start_yaw = 2.0 * np.arctan2(mount.quat[3], mount.quat[0])
        self.base.reset(mount.pos[0], mount.pos[1], start_yaw, mount.mobile_base.home_lift)
        self.arm.reset()
        self.hand_yaw = 0.0
        # The hand's reset orientation relative to the base's heading: the ee controller keeps it, turned
        # with the base and by the hand yaw.
        self._hand_in_base = np.empty(4)
        mujoco.mju_mulQuat(self._hand_in_base, yaw_to_quat(-start_yaw), self.arm.target_quat)
        self._initialize_episode()
        mujoco.mj_forward(self.model, self.data)
        self._atoms_time = -1.0

    def _validate_reset_options(self, options: dict | None) -> dict[str, Any]:
        options = super()._validate_reset_options(options)
        seed = options.get("apartment_seed")
        if seed is not None and (not isinstance(seed, int | np.integer) or seed < 0):
            raise ValueError(f"reset option apartment_seed must be a non-negative int; got {seed!r}")
        return options

    def _initialize_episode(self) -> None:
        atoms, self.instruction = self._sample_goal()
        if not 1 <= len(atoms) <= MAX_GOAL_ATOMS:
            raise RuntimeError(f"a goal needs 1..{MAX_GOAL_ATOMS} atoms; the task drew {atoms}")
        self.goal_atoms = sorted(atoms)
        self.goal = np.zeros(MAX_GOAL_ATOMS)
        self.goal[: len(atoms)] = 1.0

    # ---- helpers for the tasks -------------------------------------------------------------------
    def _start_fixture(self, obj: str) -> str:
        """The fixture whose top `obj` stands on at the start of the episode."""
        return self.apartment.object_surfaces[[o.name for o in self.apartment.objects].index(obj)].split("/")[
            0
        ]

    def _object_phrase(self, obj: str) -> str:
        return next(o.phrase for o in self.apartment.objects if o.name == obj)

    @staticmethod
    def _fixture_phrase(name: str) -> str:
        """'kitchen_table' -> 'kitchen table'; 'chest_of_drawers/top_drawer' -> 'top drawer of the chest of
        drawers'."""
        if "/" in name:
            fixture, part = name.split("/")
            return f"{part.replace('_', ' ')} of the {fixture.replace('_', ' ')}"
        return name.replace("_", " ")

    def _drawers(self) -> list[str]:
        """The drawers tasks may ask to load (`Container.loadable`)."""
        return [
            f"{f.name}/{c.link}"
            for f in self.apartment.fixtures
            for c in f.furniture.containers
            if c.loadable
        ]

    def _goal_marker_position(self) -> None:
        return None

    # ---- control ----------------------------------------------------------------------------------
    def _apply_action(self, action: np.ndarray) -> None:
        self.base.command(action[0:3], action[3])
        if self.control_mode == "ee_delta_pos":
            delta = np.empty(3)
            delta[:2] = self.base.base_to_world(action[4:6])
            delta[2] = action[6]
            self.hand_yaw = float(
                np.clip(self.hand_yaw + action[7] * MAX_HAND_YAW_STEP, -HAND_YAW_LIMIT, HAND_YAW_LIMIT)
            )
            mujoco.mju_mulQuat(
                self.arm.target_quat, yaw_to_quat(self.base.pose[2] + self.hand_yaw), self._hand_in_base
            )
            self.arm.command_tcp_delta(delta)
        else:
            self.arm.command_joint_delta(action[4:11])
        self.arm.set_gripper(action[-1])

    def _proprio(self, out: np.ndarray) -> np.ndarray:
        self.base.proprio(out[: MobileBase.PROPRIO_DIM])
        self.arm.proprio(out[MobileBase.PROPRIO_DIM : self.proprio_dim])
        return out

    # ---- world accessors (what the skills read) -------------------------------------------------------
    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World position [3] (m) and rotation matrix [3, 3] (world <- body) of the body `name`: an object,
        or a door or drawer ('fixture/link'). Copies."""
        body = self.model.body(name).id
        return self.data.xpos[body].copy(), self.data.xmat[body].reshape(3, 3).copy()

    def object_spec(self, name: str) -> ObjectSpec:
        """The scene description (shape, half-extents, ...) of the free object `name`."""
        return next(o for o in self.apartment.scene.objects if o.name == name)

    def finger_axis_yaw(self) -> float:
        """World yaw (rad) of the line along which the fingers close."""
        axis = self.data.xmat[self.arm.hand_body_id].reshape(3, 3)[:, 1]
        return float(np.arctan2(axis[1], axis[0]))

    def lift_target(self) -> float:
        """The lift's current set-point (m): the arm-base height it is driving to."""
        return float(self.data.ctrl[self.base.actuator_slice][3])

    def part_joint(self, part: str) -> PartJoint:
        """The joint of door or drawer `part` ('fixture/link') now: position, range, type, axis and anchor."""
        joint = self.sim.fixture_joint_ids[part]
        low, high = self.model.jnt_range[joint]
        return PartJoint(
            position=float(self.data.qpos[self.model.jnt_qposadr[joint]]),
            low=float(low),
            high=float(high),
            slide=bool(self.model.jnt_type[joint] == mujoco.mjtJoint.mjJNT_SLIDE),
            axis=self.data.xaxis[joint].copy(),
            anchor=self.data.xanchor[joint].copy(),
        )

    def arm_contacts(self) -> list[str]:
        """Sorted names of the furniture (not the free objects) that an arm link touches now."""
        m, d = self.model, self.data
        arm_bodies = set(range(self.arm.hand_body_id - 8, self.arm.hand_body_id + 3))
        touched = set()
        for i in range(d.ncon):
            b1, b2 = int(m.geom_bodyid[d.contact.geom1[i]]), int(m.geom_bodyid[d.contact.geom2[i]])
            for arm, other in ((b1, b2), (b2, b1)):
                if arm in arm_bodies and other not in arm_bodies:
                    name = m.body(other).name
                    if name.split("/")[0] not in self.symbolic.objects:
                        touched.add(name.split("/")[0])
        return sorted(touched)

    # ---- symbolic state ---------------------------------------------------------------------------
    def predicates(self) -> set[Atom]:
        """The atoms that hold in the current physics state (computed once per step)."""
        if self._atoms_time != self.data.time:
            self._atoms = self.symbolic.atoms()
            self._atoms_time = self.data.time
        return self._atoms

    def scene_graph(self) -> dict:
        """Rooms, fixtures, objects, robot and relations as JSON-serialisable data (`SymbolicState`)."""
        return self.symbolic.scene_graph(self.predicates())

    def _achieved_goal(self) -> np.ndarray:
        atoms = self.predicates()
        achieved = np.zeros(MAX_GOAL_ATOMS)
        for i, atom in enumerate(self.goal_atoms):
            achieved[i] = atom in atoms
        return achieved

    def _goal_distance(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """The number of goal atoms (desired 1) that do not hold (achieved 0); vectorised."""
        return np.sum(np.maximum(np.asarray(desired) - np.asarray(achieved), 0.0), axis=-1)

    def _goal_reached(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        return self._goal_distance(achieved, desired) < 0.5

    def _info(self, achieved: np.ndarray) -> dict:
        info = super()._info(achieved)
        info["predicates"] = set(self.predicates())
        info["goal"] = set(self.goal_atoms)
        info["instruction"] = self.instruction
        return info
