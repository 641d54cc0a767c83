"""TeamCarry-v0: a team of 1-8 human-proxy agents carries one payload (table, box or sofa) to a goal pose.

A PettingZoo `ParallelEnv` on MuJoCo (timestep 0.002 s, 25 Hz control, `frame_skip` = 20). Each episode
draws a layout from the seed (`layout.sample_layout`): payload shape, size and mass, a room with round
obstacles, the goal pose, and the agents standing in a ring around the payload in random order. The
payload weighs between k - 0.75 and k - 0.3 human lift forces (`k`, default 2), so fewer than `k`
humans cannot lift it: their lift actuators run out of force.

Actions (per agent, `Box(-1, 1, (5,))`): `[vx, vy, wz, hand_height, grip]` — base velocity in the
agent's own frame (x forward) scaled by 1.0 m/s, yaw rate scaled by 1.5 rad/s, hand height target
mapped linearly onto 0.42..1.10 m above the floor, and grip (> 0: close the hands). A hand grips (its
`connect` equality is switched on at the point where it is) only when grip is on and the hand is
within 8 cm of a handle bar's axis; it lets go when grip is off or when its constraint force exceeds
the role's limit, and then stays open until grip is switched off and on again. Out-of-range entries
are clipped; NaN or inf raise `ValueError` naming the agent and entry.

Observation (per agent, float32 `Box(171,)`, every position and velocity in the agent's own frame:
x forward, y left, z up; metres, m/s, rad/s):

    [0:13)    self: x/room, y/room, sin yaw, cos yaw, vx, vy, wz, hand height, hand vertical velocity,
              left grip, right grip, is robot, time left fraction
    [13:28)   payload: position (3), sin/cos of its yaw relative to the agent (2), velocity (3),
              yaw rate (1), half-extents (3), shape one-hot table/box/sofa (3)
    [28:36)   goal: position relative to the agent (2), sin/cos of goal yaw relative to the agent (2),
              goal position in the payload frame (2), sin/cos of the payload's yaw error (2)
    [36:92)   handles: max_agents slots x (position 3, outward normal 2, gripped by anyone 1), then a
              mask of max_agents (1 = slot used)
    [92:155)  other agents, in order i+1, i+2, ...: (max_agents - 1) slots x (position 2, sin/cos of
              relative yaw 2, velocity 2, gripping 1, is robot 1), then a mask of max_agents - 1
    [155:171) obstacles: MAX_OBSTACLES slots x (position 2, radius 1), then a mask of MAX_OBSTACLES

`state()` is the global state (float32 `[185]`, world frame): payload position 3, quaternion 4, linear
and angular velocity 6, half-extents 3, shape one-hot 3, mass / 100, goal x, y, sin, cos yaw, time left
fraction (25); max_agents agent slots x (x, y, sin yaw, cos yaw, vx, vy, wz, hand height, left grip,
right grip, is robot, present) (96); max_agents handle slots x (x, y, z, normal x, normal y, present)
(48); MAX_OBSTACLES obstacle slots x (x, y, radius, present) (16).

Reward per agent: a shared task reward, 2 x (decrease of the payload's distance to the goal, m) +
0.5 x (decrease of its yaw error, rad) + 0.05 per step while lifted + 10 on success, plus the agent's
own shaping: -0.02 x its hands' distance to the nearest handle (m, at most 2) while not gripping,
+0.02 x the fraction of its hands gripping.

Success: the payload, once lifted, is set down (its lowest corner within 1 cm of the floor, speed
under 0.05 m/s) within 0.1 m and 15 degrees of the goal pose; all agents terminate. `info[agent]`
holds `is_success` and the TeamHOI-style metrics of the episode so far: `final_distance` (m),
`yaw_error_deg`, `cooperation_time` (fraction of control steps from the first lift on in which every
agent grips with at least one hand), `payload_jerk` (mean magnitude of the payload's jerk from the
first lift on, m/s^3, finite differences at 25 Hz), `lifted`, `max_lift_height` (m).
"""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from embodylab.core.geometry import wrap_angle
from embodylab.core.rendering import OffscreenRenderer
from embodylab.envs.team.layout import (
    HANDLE_HALF_LENGTH,
    PAYLOAD_SHAPES,
    ROLE_PARAMS,
    ROLES,
    TeamLayout,
    sample_layout,
)
from embodylab.envs.team.scene import HAND_HEIGHT, LIFT_RANGE, SceneCache

PHYSICS_TIMESTEP = 0.002
CONTROL_HZ = 25
MAX_AGENTS = 8
MAX_OBSTACLES = 4
MAX_SPEED = 1.0  # m/s, base speed at action 1
MAX_YAW_RATE = 1.5  # rad/s
GRIP_REACH = 0.08  # m from a hand's centre to a handle bar's axis
LIFTED_CLEARANCE = 0.02  # m: the payload counts as lifted when its lowest corner is this high
SET_DOWN_CLEARANCE = 0.01  # m
SET_DOWN_SPEED = 0.05  # m/s
SUCCESS_DISTANCE = 0.1  # m
SUCCESS_YAW = np.deg2rad(15.0)
ACTION_NAMES = ("vx", "vy", "wz", "hand_height", "grip")
SELF_DIM, PAYLOAD_DIM, GOAL_DIM, HANDLE_DIM, OTHER_DIM, OBSTACLE_DIM = 13, 15, 8, 6, 8, 3
CAMERAS = ("follow", "overview")
# Reductions called as ufunc methods: on arrays this small numpy's Python-level wrappers (`ndarray.sum`,
# `np.min`, `ndarray.any`) cost as much as the reduction itself.
_sum, _min, _any = np.add.reduce, np.minimum.reduce, np.logical_or.reduce


class TeamCarryEnv(ParallelEnv):
    """TeamCarry-v0 (see the module docstring for spaces, reward, metrics and success)."""

    metadata = {"name": "TeamCarry-v0", "render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(
        self,
        n_agents: int = 2,
        k: int = 2,
        roles: tuple[str, ...] | None = None,
        max_agents: int = MAX_AGENTS,
        shapes: tuple[str, ...] = PAYLOAD_SHAPES,
        max_episode_steps: int = 1000,
        room_half: float = 6.0,
        max_obstacles: int = 2,
        render_mode: str | None = None,
        camera: str = "follow",
        render_size: int = 256,
    ):
        if not 1 <= max_agents <= MAX_AGENTS:
            raise ValueError(f"max_agents must be in 1..{MAX_AGENTS}; got {max_agents}")
        if not 1 <= n_agents <= max_agents:
            raise ValueError(f"n_agents must be in 1..{max_agents} (max_agents); got {n_agents}")
        if k < 1:
            raise ValueError(f"k (agents needed to lift) must be at least 1; got {k}")
        roles = tuple(roles) if roles is not None else ("human",) * n_agents
        if len(roles) != n_agents:
            raise ValueError(f"roles has {len(roles)} entries for {n_agents} agents: {roles}")
        for role in roles:
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
        for shape in shapes:
            if shape not in PAYLOAD_SHAPES:
                raise ValueError(
                    f"unknown payload shape {shape!r}; valid shapes: {', '.join(PAYLOAD_SHAPES)}"
                )
        if not 1 <= max_obstacles <= MAX_OBSTACLES:
            raise ValueError(f"max_obstacles must be in 1..{MAX_OBSTACLES}; got {max_obstacles}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: None, 'rgb_array'")
        if camera not in CAMERAS:
            raise ValueError(f"unknown camera {camera!r}; valid cameras: {', '.join(CAMERAS)}")
        self.n_agents, self.k, self.roles, self.max_agents = n_agents, k, roles, max_agents
        self.shapes, self.max_episode_steps = tuple(shapes), max_episode_steps
        self.room_half, self.max_obstacles = room_half, max_obstacles
        self.render_mode, self.camera, self.render_size = render_mode, camera, render_size
        self.frame_skip = round(1.0 / (CONTROL_HZ * PHYSICS_TIMESTEP))
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        obs_dim = (
            SELF_DIM
            + PAYLOAD_DIM
            + GOAL_DIM
            + max_agents * (HANDLE_DIM + 1)
            + (max_agents - 1) * (OTHER_DIM + 1)
            + MAX_OBSTACLES * (OBSTACLE_DIM + 1)
        )
        self._observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self._action_space = spaces.Box(-1.0, 1.0, (len(ACTION_NAMES),), np.float32)
        self.state_space = spaces.Box(
            -np.inf, np.inf, (25 + max_agents * 12 + max_agents * 6 + MAX_OBSTACLES * 4,), np.float32
        )
        self._role_is_robot = np.array([r == "robot" for r in roles], dtype=np.float64)
        self._grip_limit = np.array([ROLE_PARAMS[r].grip_force_limit for r in roles])
        self._np_random, self._np_random_seed = seeding.np_random(None)
        self._renderer: OffscreenRenderer | None = None
        self._scenes = SceneCache(PHYSICS_TIMESTEP)
        self._observation_plans: dict[tuple[int, int], dict[str, Any]] = {}
        self._views: dict[int, dict[str, np.ndarray]] = {}  # by id of a model the scene cache holds
        self._controls = np.empty((n_agents, len(ACTION_NAMES)))
        self._heading_cs, self._products = np.empty((n_agents, 2)), np.empty((n_agents, 2, 2))
        lo, hi = LIFT_RANGE
        self._affine_shift = np.array([0.0, 1.0])
        self._affine_scale = np.array([2.0 * MAX_YAW_RATE, hi - lo])
        self._affine_offset = np.array([0.0, lo])
        # What an agent without an action does: stand still, hands at the lift's zero, grip open.
        self._idle_action = np.array(
            [0.0, 0.0, 0.0, -1.0 + 2.0 * (0.0 - LIFT_RANGE[0]) / (LIFT_RANGE[1] - LIFT_RANGE[0]), -1.0]
        )
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self.layout: TeamLayout | None = None

    # ---- spaces ---------------------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        """The same space object for every agent (team-size agnostic layout, see the module docstring)."""
        self._agent_index(agent)
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Box:
        self._agent_index(agent)
        return self._action_space

    def _agent_index(self, agent: str) -> int:
        if agent not in self._index:
            raise ValueError(f"unknown agent {agent!r}; valid agents: {', '.join(self.possible_agents)}")
        return self._index[agent]

    # ---- episode --------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Draws a new layout from the env's generator (re-seeded by `seed`) and resets the physics to it.
        The first layout of each scene topology (payload shape, obstacle count) is compiled; later ones
        are written into that compiled model (`scene.SceneCache`), which is what makes a reset cheap.
        `options` is accepted for API compatibility and not used."""
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        self.layout = sample_layout(
            self.n_agents,
            self.roles,
            self.k,
            self.shapes,
            self.room_half,
            self.max_obstacles,
            self._np_random,
        )
        model, data, ids = self._scenes.load(self.layout)
        if model is not self.model:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
            self.model, self.data, self.ids = model, data, ids
            if id(model) not in self._views:
                self._bind_views()
                self._views[id(model)] = {name: getattr(self, name) for name in self._VIEWS}
            for name, value in self._views[id(model)].items():
                setattr(self, name, value)
        self._agent_qpos[:, :3] = self.layout.agent_poses
        mujoco.mj_forward(self.model, self.data)
        self._prepare_episode_constants()
        self.agents = list(self.possible_agents)
        self.steps = 0
        self._grip_on = np.zeros((self.n_agents, 2), bool)
        self._grip_blocked = np.zeros((self.n_agents, 2), bool)  # broken grips wait for a re-press
        self._lift_step: int | None = None
        self._steps_lifted = 0
        self._steps_all_gripping = 0
        self._jerk_sum = 0.0
        self._jerk_count = 0
        self._velocity_history: list[tuple[float, float, float]] = []
        self._max_lift = 0.0
        self._success = False
        self._update_geometry()
        self._prev_distance, self._prev_yaw_error = self._goal_errors()
        info = self._info()
        return self._observations(), {a: dict(info) for a in self.agents}

    _VIEWS = (  # what `_bind_views` builds, kept per compiled model
        "_agent_qpos", "_agent_qvel", "_agent_ctrl", "_grip_active", "_hands", "_payload_qpos",
        "_payload_qvel", "_payload_pos", "_payload_rot", "_grip_eq",
    )  # fmt: skip

    def _bind_views(self) -> None:
        """Views into the data arrays and index arrays for the hot path, once per compiled model. The
        scene lays out each agent's joints (x, y, yaw, lift), actuators, grips and hand sites
        consecutively and agent after agent, so every per-agent quantity is a strided view."""
        d, ids, n = self.data, self.ids, self.n_agents

        def per_agent(array: np.ndarray, index: np.ndarray) -> np.ndarray:
            """The view `[n_agents, width, ...]` of `array` at `index` `[n_agents, width]`."""
            width = index.shape[1]
            first = int(index.min())
            view = array[first : first + n * width].reshape(n, width, *array.shape[1:])
            within = index - first - width * np.arange(n)[:, None]
            if (within == np.arange(width)).all():
                return view
            if (within == np.arange(width)[::-1]).all():
                return view[:, ::-1]
            raise RuntimeError(
                f"team scene layout changed: indices {index.tolist()} are not per agent blocks"
            )

        self._agent_qpos = per_agent(d.qpos, np.c_[ids.base_qpos, ids.lift_qpos])  # x, y, yaw, lift
        self._agent_qvel = per_agent(d.qvel, np.c_[ids.base_qvel, ids.lift_qvel])
        self._agent_ctrl = per_agent(d.ctrl, np.c_[ids.base_actuators, ids.lift_actuators])
        self._grip_active = per_agent(d.eq_active, ids.grip_equalities)
        self._hands = per_agent(d.site_xpos, ids.hand_sites)
        self._payload_qpos = d.qpos[ids.payload_qpos : ids.payload_qpos + 7]
        self._payload_qvel = d.qvel[ids.payload_qvel : ids.payload_qvel + 6]
        self._payload_pos = d.xpos[ids.payload_body]
        self._payload_rot = d.xmat[ids.payload_body].reshape(3, 3)
        self._grip_eq = ids.grip_equalities

    def _prepare_episode_constants(self) -> None:
        """Layout constants and every observation entry that stays fixed for the episode."""
        layout, n, h = self.layout, self.n_agents, len(self.layout.handles)
        handles = np.array([hd.pos for hd in layout.handles])  # [h, 3] payload frame
        normals = np.array([hd.normal for hd in layout.handles])  # [h, 2]
        self._handles_local = handles
        # One matmul by the payload's rotation gives handle centres, bar half-vectors and face normals.
        frame = np.zeros((3 * h, 3))
        frame[:h] = handles
        frame[h : 2 * h, 0] = -normals[:, 1] * HANDLE_HALF_LENGTH  # the bar runs along the face tangent
        frame[h : 2 * h, 1] = normals[:, 0] * HANDLE_HALF_LENGTH
        frame[2 * h :, :2] = normals
        self._handle_frame_local = frame
        self._half_extents = np.array(layout.half_extents)
        self._hx, self._hy = layout.half_extents[0], layout.half_extents[1]
        self._shape_onehot = np.array([float(layout.shape == s) for s in PAYLOAD_SHAPES])
        self._goal = np.array(layout.goal)
        self._obstacles = np.zeros((MAX_OBSTACLES, OBSTACLE_DIM + 1))
        for j, o in enumerate(layout.obstacles):
            self._obstacles[j] = (*o.pos, o.radius, 1.0)
        self._distances = np.empty((n, 2, h))
        self._rel, self._offset = np.empty((n, 2, h, 3)), np.empty((n, 2, h, 3))
        self._along, self._squared = np.empty((n, 2, h, 1, 1)), np.empty((n, 2, h, 1, 1))
        self._layout_observation(h, len(layout.obstacles))

    _PLAN = (  # what `_plan_observation` builds, kept per scene topology
        "_world", "_w_qpos", "_w_copied", "_handle_frame", "_w_any_grip",
        "_w_scalars", "_w_taken", "_w_scaled_xy", "_w_hand_height", "_w_goal", "_w_obstacles",
        "_planar_from", "_n_points", "_angle_from", "_direct", "_values", "_local",
        "_sin", "_cos", "_planar", "_angles", "_heading", "_value_columns", "_obs", "_order",
        "_obstacle_columns",
    )  # fmt: skip

    def _layout_observation(self, h: int, n_obstacles: int) -> None:
        """Binds the observation plan of this scene topology (built once, `_plan_observation`) and
        writes the episode's constants into it: goal, obstacles, payload size and shape."""
        key = (h, n_obstacles)
        if key not in self._observation_plans:
            self._plan_observation(h, n_obstacles)
            self._observation_plans[key] = {name: getattr(self, name) for name in self._PLAN}
        for name, value in self._observation_plans[key].items():
            setattr(self, name, value)
        self._w_goal[:] = self._goal
        self._w_obstacles[:] = self._obstacles[:n_obstacles, :2]
        obs = self._obs
        obs[:, 22:25] = self._half_extents
        obs[:, 25:28] = self._shape_onehot
        radius, mask = self._obstacle_columns
        obs[:, radius] = self._obstacles[:n_obstacles, 2]
        obs[:, mask] = self._obstacles[:, 3]

    def _plan_observation(self, h: int, n_obstacles: int) -> None:
        """The buffers and index arrays that build the observation `[n_agents, obs_dim]` with a fixed,
        small number of array operations whatever the team size.

        Every step copies the world quantities the observation needs into one vector `_world` (segments
        below). Gathers from it then give, for all agents at once, the world-frame 2-vectors each agent
        sees (`_planar_from`; points then made relative to the agent's position), the angles it sees
        (`_angle_from`; all but its own yaw then made relative to it) and the entries it copies unchanged
        (`_direct`). One complex multiplication by exp(-i yaw) rotates every 2-vector into its agent's
        frame, and one scatter puts rotated vectors, sines, cosines and copies into the observation,
        whose fixed entries (masks, roles) are written here."""
        n, m = self.n_agents, self.max_agents
        handle0 = SELF_DIM + PAYLOAD_DIM + GOAL_DIM
        other0 = handle0 + m * (HANDLE_DIM + 1)
        obstacle0 = other0 + (m - 1) * (OTHER_DIM + 1)
        hs, bs = np.arange(h), np.arange(n_obstacles)
        agents = np.arange(n)
        order = (agents[:, None] + np.arange(1, n)[None, :]) % n  # the others of agent i: i+1, i+2, ...
        slot = np.arange(n - 1)

        # The first five segments are copied from the simulation in one concatenate per step.
        sizes = dict(qpos=4 * n, qvel=4 * n, pos=3, vel=6, grip=2 * n, any_grip=n, handles=9 * h)
        sizes |= dict(scalars=6, taken=h, scaled_xy=2 * n, hand_height=n, goal=3, obstacles=2 * n_obstacles)
        at, offset = {}, 0
        for name, size in sizes.items():
            at[name] = offset
            offset += size
        world = np.zeros(offset)
        self._world = world
        view = lambda name, *shape: world[at[name] : at[name] + sizes[name]].reshape(*shape)  # noqa: E731
        self._w_qpos, self._w_copied = view("qpos", n, 4), world[: at["any_grip"]]
        self._handle_frame = view("handles", 3 * h, 3)  # centres, bar half-vectors, normals (world)
        self._w_any_grip = view("any_grip", n)
        self._w_scalars, self._w_taken = view("scalars", 6), view("taken", h)
        self._w_scaled_xy, self._w_hand_height = view("scaled_xy", n, 2), view("hand_height", n)
        self._w_goal, self._w_obstacles = view("goal", 3), view("obstacles", n_obstacles, 2)
        qpos, qvel, handles = at["qpos"], at["qvel"], at["handles"]
        scalars = at["scalars"]  # time left, goal in the payload frame (2), sin/cos payload yaw error, yaw

        def pairs(first):  # indices [..., 2] of the 2-vectors starting at `first` (world or observation)
            first = np.asarray(first)
            return np.stack([first, first + 1], axis=-1)

        shared = lambda idx: np.broadcast_to(idx, (n, *np.shape(idx)))  # noqa: E731
        points = [  # (world indices [n, k, 2], observation columns [k, 2] or [n, k, 2])
            (shared(pairs([at["pos"], at["goal"]])), pairs([13, 28])),
            (shared(pairs(handles + 3 * hs)), pairs(handle0 + HANDLE_DIM * hs)),
            (shared(pairs(at["obstacles"] + 2 * bs)), pairs(obstacle0 + OBSTACLE_DIM * bs)),
            (pairs(qpos + 4 * order), pairs(other0 + OTHER_DIM * slot)),
        ]
        vectors = [
            (shared(pairs([at["vel"]])), pairs([18])),
            (shared(pairs(handles + 6 * h + 3 * hs)), pairs(handle0 + HANDLE_DIM * hs + 3)),
            (pairs(qvel + 4 * agents)[:, None], pairs([4])),
            (pairs(qvel + 4 * order), pairs(other0 + OTHER_DIM * slot + 4)),
        ]
        source = np.concatenate([np.broadcast_to(i, (n, *i.shape[1:])) for i, _ in points + vectors], axis=1)
        n_points = sum(i.shape[1] for i, _ in points)
        self._planar_from, self._n_points = source, n_points  # [n, entities, 2]; points come first
        planar_columns = np.concatenate([c.reshape(-1) for _, c in points + vectors])
        entities = source.shape[1]

        yaw = qpos + 4 * agents + 2
        angle_from = np.c_[yaw, np.full(n, scalars + 5), np.full(n, at["goal"] + 2), yaw[order]]
        self._angle_from = angle_from
        angle_columns = np.r_[2, 16, 30, other0 + OTHER_DIM * slot + 2]

        direct = [  # (world indices [n, k], observation columns [k])
            (at["scaled_xy"] + pairs(2 * agents), [0, 1]),
            (np.c_[qvel + 4 * agents + 2, at["hand_height"] + agents, qvel + 4 * agents + 3], [6, 7, 8]),
            (at["grip"] + pairs(2 * agents), [9, 10]),
            (shared(np.r_[scalars, at["pos"] + 2, at["vel"] + 2, at["vel"] + 5]), [12, 15, 20, 21]),
            (shared(scalars + np.arange(1, 5)), [32, 33, 34, 35]),
            (shared(handles + 3 * hs + 2), handle0 + HANDLE_DIM * hs + 2),
            (shared(at["taken"] + hs), handle0 + HANDLE_DIM * hs + 5),
            (at["any_grip"] + order, other0 + OTHER_DIM * slot + 6),
        ]
        self._direct = np.concatenate([np.broadcast_to(i, (n, len(c))) for i, c in direct], axis=1)
        direct_columns = np.concatenate([np.asarray(c, int) for _, c in direct])

        # Everything computed per step lands in `_values` [n, 2 entities | angles | angles | direct].
        a = angle_from.shape[1]
        self._values = np.zeros((n, 2 * entities + 2 * a + self._direct.shape[1]))
        self._local = self._values[:, : 2 * entities].view(np.complex128)  # [n, entities]
        self._sin = self._values[:, 2 * entities : 2 * entities + a]
        self._cos = self._values[:, 2 * entities + a : 2 * entities + 2 * a]
        self._planar = np.empty((n, entities, 2))
        self._angles = np.empty((n, a))
        self._heading = np.empty(
            n, np.complex128
        )  # exp(-i yaw): multiplying by it rotates into the agent frame
        self._value_columns = np.r_[planar_columns, angle_columns, angle_columns + 1, direct_columns]
        if len(np.unique(self._value_columns)) != len(self._value_columns):
            raise RuntimeError("observation layout writes a column twice")

        obs = np.zeros((n, self._observation_space.shape[0]))
        obs[:, 11] = self._role_is_robot
        obs[:, handle0 + m * HANDLE_DIM + hs] = 1.0
        obs[:, other0 + OTHER_DIM * slot + 7] = self._role_is_robot[order]
        obs[:, other0 + (m - 1) * OTHER_DIM + slot] = 1.0
        self._obstacle_columns = (
            obstacle0 + OBSTACLE_DIM * bs + 2,  # radii
            obstacle0 + MAX_OBSTACLES * OBSTACLE_DIM + np.arange(MAX_OBSTACLES),  # mask
        )
        self._obs = obs
        self._order = order

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        controls = self._validated_actions(actions)
        m, d = self.model, self.data
        ctrl, yaw, heading = self._agent_ctrl, self._agent_qpos[:, 2], self._heading_cs
        np.cos(yaw, out=heading[:, 0])
        np.sin(yaw, out=heading[:, 1])
        # Base velocity to the world frame: products [n, (cos, sin), (vx, vy)], then
        # world x = cos vx - sin vy and world y = sin vx + cos vy.
        products = np.multiply(heading[:, :, None], controls[:, None, 0:2], out=self._products)
        products *= MAX_SPEED
        np.subtract(products[:, 0, 0], products[:, 1, 1], out=ctrl[:, 0])
        np.add(products[:, 1, 0], products[:, 0, 1], out=ctrl[:, 1])
        # Yaw rate c * MAX_YAW_RATE and lift target lo + (c + 1) / 2 * (hi - lo) as one affine map
        # (c + shift) / 2 * scale + offset of columns 2:4 (the same roundings: halving is exact).
        affine = np.add(controls[:, 2:4], self._affine_shift, out=ctrl[:, 2:4])
        affine /= 2.0
        affine *= self._affine_scale
        affine += self._affine_offset
        self._update_grips(controls[:, 4] > 0.0)
        mujoco.mj_step(m, d, nstep=self.frame_skip)
        self.steps += 1
        physics_error = None
        if not math.isfinite(_sum(d.qpos) + _sum(d.qvel)):
            physics_error = "the simulation diverged (non-finite state)"
        else:
            self._release_overloaded_grips()
        self._update_geometry()
        self._update_metrics()

        distance, yaw_error = self._goal_errors()
        task = 2.0 * (self._prev_distance - distance) + 0.5 * (self._prev_yaw_error - yaw_error)
        self._prev_distance, self._prev_yaw_error = distance, yaw_error
        task += 0.05 * (self._clearance > LIFTED_CLEARANCE)
        self._success = self._set_down_at_goal(distance, yaw_error)
        task += 10.0 * self._success
        terminated = self._success
        truncated = self.steps >= self.max_episode_steps or physics_error is not None
        observations = self._observations()
        # Per-agent shaping, added while the reward dict is built: +0.02 x the fraction of its hands
        # gripping, or while it grips nothing -0.02 x its hands' mean distance to the nearest bar (<= 2 m).
        hands = np.add(self._nearest[:, 0], self._nearest[:, 1]).tolist()
        grips = _sum(self._grip_on, axis=1, dtype=int).tolist()
        rewards = {
            a: task + (0.02 * (g * 0.5) if g else -0.02 * min(h * 0.5, 2.0))
            for a, h, g in zip(self.agents, hands, grips, strict=True)
        }
        info = self._info(physics_error)
        infos = {a: dict(info) for a in self.agents}
        terminations = dict.fromkeys(self.agents, bool(terminated))
        truncations = dict.fromkeys(self.agents, bool(truncated and not terminated))
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _validated_actions(self, actions: dict[str, Any]) -> np.ndarray:
        """[n_agents, 5] clipped actions; agents missing from `actions` stand still with open hands."""
        if not isinstance(actions, dict):
            raise ValueError(
                f"actions must be a dict from agent name to action; got {type(actions).__name__}"
            )
        controls = self._controls
        shape = (self.n_agents, len(ACTION_NAMES))
        stacked = None
        if self.agents and list(actions) == self.agents:  # the usual call: every agent, in agent order
            try:
                stacked = np.array(list(actions.values()), dtype=np.float64)
            except (TypeError, ValueError):
                stacked = None  # ragged or not numbers: the loop below names the bad action
        if stacked is not None and stacked.shape == shape:
            controls[:] = stacked
        else:
            self._parse_actions(actions)
        if not math.isfinite(_sum(controls, axis=None)) and not np.isfinite(controls).all():
            agent, j = divmod(int(np.flatnonzero(~np.isfinite(controls))[0]), len(ACTION_NAMES))
            raise ValueError(
                f"action of {self.possible_agents[agent]} has non-finite entry {j} ({ACTION_NAMES[j]}) = "
                f"{controls[agent, j]}"
            )
        np.maximum(controls, -1.0, out=controls)
        return np.minimum(controls, 1.0, out=controls)

    def _parse_actions(self, actions: dict[str, Any]) -> None:
        """Writes `actions` agent by agent into `_controls`, naming the first bad agent or shape."""
        controls = self._controls
        controls[:] = self._idle_action
        index = self._index if self.agents else {}
        for agent, action in actions.items():
            i = index.get(agent)
            if i is None:
                valid = ", ".join(self.agents) or "none (the episode is over)"
                raise ValueError(f"action for unknown or finished agent {agent!r}; live agents: {valid}")
            a = action if isinstance(action, np.ndarray) else np.asarray(action, dtype=np.float64)
            if a.shape != (len(ACTION_NAMES),):
                raise ValueError(
                    f"action of {agent} has shape {a.shape}; expected ({len(ACTION_NAMES)},) = {ACTION_NAMES}"
                )
            controls[i] = a

    # ---- grips ----------------------------------------------------------------------------------------
    def _payload_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self._payload_pos, self._payload_rot

    def hand_positions(self) -> np.ndarray:
        """World positions (m) of every hand, `[n_agents, 2, 3]` (left, right)."""
        return self._hands.copy()

    def handle_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """World centres `[n_handles, 3]` and half-length vectors `[n_handles, 3]` of the handle bars."""
        pos, rot = self._payload_pose()
        h = len(self._handles_local)
        frame = self._handle_frame_local @ rot.T
        return pos + frame[:h], frame[h : 2 * h]

    def _update_geometry(self) -> None:
        """Handle bars in the world and each hand's distance (m) to each bar's axis segment,
        `_distances` `[n_agents, 2, n_handles]` (`_nearest`: to the nearest bar, `[n_agents, 2]`), for
        the state the data holds now. The grip check of the next step reads them too: nothing moves
        between the end of one step and the start of the next."""
        pos, rot = self._payload_pose()
        h = len(self._handles_local)
        frame = np.matmul(self._handle_frame_local, rot.T, out=self._handle_frame)
        centres, half = frame[:h], frame[h : 2 * h]
        centres += pos
        rel = np.subtract(self._hands[:, :, None, :], centres, out=self._rel)  # [n, 2, h, 3]
        t = np.matmul(rel[..., None, :], half[:, :, None], out=self._along)[..., 0]  # [n, 2, h, 1]
        t /= np.einsum("hk,hk->h", half, half)[:, None]
        np.maximum(t, -1.0, out=t)
        np.minimum(t, 1.0, out=t)
        rel -= np.multiply(t, half, out=self._offset)
        squared = np.matmul(rel[..., None, :], rel[..., :, None], out=self._squared)  # [n, 2, h, 1, 1]
        np.sqrt(squared.reshape(self._distances.shape), out=self._distances)
        self._nearest = _min(self._distances, axis=-1)
        self._clearance = self._payload_clearance()

    def _hand_handle_distances(self) -> np.ndarray:
        """Distance (m) from each hand to each handle bar's axis segment, `[n_agents, 2, n_handles]`."""
        return self._distances.copy()

    def _update_grips(self, grip_command: np.ndarray) -> None:
        command, on = grip_command[:, None], self._grip_on
        # A hand holds on while commanded; it closes on a bar when commanded, within reach and not
        # blocked by a grip that broke (opening the hand re-arms it).
        gripping = np.greater(self._nearest < GRIP_REACH, self._grip_blocked)
        gripping |= on
        gripping &= command
        engage = np.greater(gripping, on)
        if _any(engage, axis=None):
            pos, rot = self._payload_pose()
            # The hand holds the payload where it touches it: the payload-frame anchor is the hand's
            # current position, so switching the constraint on applies no impulse.
            self.model.eq_data[self._grip_eq[engage], 3:6] = (self._hands[engage] - pos) @ rot
        self._grip_blocked &= command
        on[:] = gripping
        self._grip_active[:] = gripping

    def _release_overloaded_grips(self) -> None:
        """Opens every hand whose grip constraint force exceeds its role's limit."""
        if not _any(self._grip_on, axis=None):
            return
        broken = self._grip_on & (self.grip_forces() > self._grip_limit[:, None])
        if _any(broken, axis=None):
            self._grip_on &= ~broken
            self._grip_blocked |= broken
            self._grip_active[:] = self._grip_on

    def grip_forces(self) -> np.ndarray:
        """Force (N) each hand's grip constraint carries, `[n_agents, 2]`: the norm of its three equality
        rows of `data.efc_force` at the last physics substep (0 for an open hand)."""
        d = self.data
        # Equality rows come first among the constraint rows, three per active connect constraint.
        rows = d.ne
        forces = np.zeros(self.model.neq)
        if rows:
            f = d.efc_force[:rows].reshape(-1, 3)
            forces[d.efc_id[:rows:3]] = np.sqrt(np.einsum("ij,ij->i", f, f))
        return forces[self._grip_eq]

    @property
    def gripping(self) -> np.ndarray:
        """Whether each hand grips the payload, bool `[n_agents, 2]` (a copy)."""
        return self._grip_on.copy()

    # ---- task quantities ------------------------------------------------------------------------------
    def _payload_yaw(self) -> float:
        w, x, y, z = self._payload_qpos[3:7].tolist()
        return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))

    def payload_pose2d(self) -> np.ndarray:
        """Payload (x, y, yaw) on the floor plane, world frame (m, rad)."""
        return np.array([self._payload_qpos[0], self._payload_qpos[1], self._payload_yaw()])

    def base_poses(self) -> np.ndarray:
        """Agent base poses (x, y, yaw), world frame, `[n_agents, 3]`."""
        return self._agent_qpos[:, :3].copy()

    def payload_clearance(self) -> float:
        """Height (m) of the payload's lowest bottom corner above the floor (0 when it rests on it)."""
        return self._payload_clearance()

    def _payload_clearance(self) -> float:
        # The lowest of the bottom corners (+-hx, +-hy, 0): its height offset is -|hx r20| - |hy r21|.
        r20, r21 = self._payload_rot[2, 0], self._payload_rot[2, 1]
        return float(self._payload_pos[2] - (abs(self._hx * r20) + abs(self._hy * r21)))

    def _goal_errors(self) -> tuple[float, float]:
        x, y = self._payload_qpos[0], self._payload_qpos[1]
        gx, gy, gyaw = self.layout.goal
        return math.hypot(gx - x, gy - y), abs(wrap_angle(gyaw - self._payload_yaw()))

    def _set_down_at_goal(self, distance: float, yaw_error: float) -> bool:
        vx, vy, vz = self._payload_qvel[:3].tolist()
        return bool(
            self._lift_step is not None
            and self._clearance < SET_DOWN_CLEARANCE
            and math.sqrt(vx * vx + vy * vy + vz * vz) < SET_DOWN_SPEED
            and distance < SUCCESS_DISTANCE
            and yaw_error < SUCCESS_YAW
        )

    def _update_metrics(self) -> None:
        height = self._clearance
        self._max_lift = max(self._max_lift, height)
        if self._lift_step is None and height > LIFTED_CLEARANCE:
            self._lift_step = self.steps
        if self._lift_step is None:
            return
        self._steps_lifted += 1
        self._steps_all_gripping += bool((self._grip_on[:, 0] | self._grip_on[:, 1]).all())
        history = self._velocity_history
        history.append(tuple(self._payload_qvel[:3].tolist()))
        if len(history) > 3:
            del history[0]
        if len(history) == 3:
            jerk = [c - 2 * b + a for a, b, c in zip(*history, strict=True)]
            self._jerk_sum += math.sqrt(sum(j * j for j in jerk)) / (1.0 / CONTROL_HZ) ** 2
            self._jerk_count += 1

    def metrics(self) -> dict[str, float | bool]:
        """The TeamHOI-style metrics of the episode so far (see the module docstring)."""
        return self._metrics(*self._goal_errors())

    def _metrics(self, distance: float, yaw_error: float) -> dict[str, float | bool]:
        return {
            "final_distance": distance,
            "yaw_error_deg": math.degrees(yaw_error),
            "cooperation_time": self._steps_all_gripping / self._steps_lifted if self._steps_lifted else 0.0,
            "payload_jerk": self._jerk_sum / self._jerk_count if self._jerk_count else 0.0,
            "lifted": self._lift_step is not None,
            "max_lift_height": self._max_lift,
        }

    def _info(self, physics_error: str | None = None) -> dict:
        info = {"is_success": self._success, **self._metrics(self._prev_distance, self._prev_yaw_error)}
        if physics_error is not None:
            info["physics_error"] = physics_error
        return info

    # ---- observations ---------------------------------------------------------------------------------
    def _observations(self) -> dict[str, np.ndarray]:
        """Fills the observation `[n_agents, obs_dim]` (layout in the module docstring; method in
        `_layout_observation`) and returns one float32 row per agent (fresh arrays: earlier observations
        are never overwritten)."""
        rot, grip = self._payload_rot, self._grip_on
        sources = (self._agent_qpos, self._agent_qvel, self._payload_pos, self._payload_qvel, grip)
        np.concatenate(sources, axis=None, out=self._w_copied)
        np.logical_or(grip[:, 0], grip[:, 1], out=self._w_any_grip)
        np.divide(self._agent_qpos[:, :2], self.room_half, out=self._w_scaled_xy)
        np.add(self._agent_qpos[:, 3], HAND_HEIGHT, out=self._w_hand_height)
        p_yaw = math.atan2(rot[1, 0], rot[0, 0])
        gx, gy, gyaw = self.layout.goal
        goal_x, goal_y = gx - self._payload_pos[0], gy - self._payload_pos[1]
        c, s = math.cos(p_yaw), math.sin(p_yaw)
        self._w_scalars[:] = (
            1.0 - self.steps / self.max_episode_steps,
            c * goal_x + s * goal_y,
            -s * goal_x + c * goal_y,
            math.sin(gyaw - p_yaw),
            math.cos(gyaw - p_yaw),
            p_yaw,
        )
        taken = self._w_taken
        taken[:] = 0.0
        if _any(grip, axis=None):
            taken[self._distances.argmin(axis=-1)[grip]] = 1.0

        world = self._world
        angles = world.take(self._angle_from, out=self._angles, mode="clip")
        angles[:, 1:] -= self._w_qpos[:, 2:3]  # every angle but the agent's own yaw is relative to it
        np.sin(self._angles, out=self._sin)
        np.cos(self._angles, out=self._cos)
        heading = self._heading.view(np.float64).reshape(-1, 2)
        heading[:, 0] = self._cos[:, 0]
        np.negative(self._sin[:, 0], out=heading[:, 1])
        planar = world.take(self._planar_from, out=self._planar, mode="clip")
        planar[:, : self._n_points] -= self._w_qpos[:, None, :2]  # points relative to the agent
        np.multiply(planar.view(np.complex128)[..., 0], self._heading[:, None], out=self._local)
        world.take(self._direct, out=self._values[:, -self._direct.shape[1] :], mode="clip")
        obs = self._obs
        obs[:, self._value_columns] = self._values
        return dict(zip(self.agents, obs.astype(np.float32), strict=True))

    def state(self) -> np.ndarray:
        """Global state for a centralised critic (layout in the module docstring), float32 `[185]`."""
        d, ids = self.data, self.ids
        gx, gy, gyaw = self._goal
        head = np.concatenate(
            [
                self._payload_qpos,
                self._payload_qvel,
                self._half_extents,
                self._shape_onehot,
                [
                    self.layout.mass / 100.0,
                    gx,
                    gy,
                    np.sin(gyaw),
                    np.cos(gyaw),
                    1.0 - self.steps / self.max_episode_steps,
                ],
            ]
        )
        agents = np.zeros((self.max_agents, 12))
        base = self._agent_qpos
        agents[: self.n_agents] = np.column_stack(
            [
                base[:, :2],
                np.sin(base[:, 2]),
                np.cos(base[:, 2]),
                d.qvel[ids.base_qvel],
                HAND_HEIGHT + base[:, 3],
                self._grip_on.astype(float),
                self._role_is_robot,
                np.ones(self.n_agents),
            ]
        )
        handles = np.zeros((self.max_agents, 6))
        h = len(self._handles_local)
        centres, normals = (
            self.handle_segments()[0],
            (self._handle_frame_local @ self._payload_rot.T)[2 * h :],
        )
        handles[:h] = np.column_stack([centres, normals[:, :2], np.ones(h)])
        return np.concatenate([head, agents.ravel(), handles.ravel(), self._obstacles.ravel()]).astype(
            np.float32
        )

    # ---- rendering ------------------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        """An RGB frame uint8 `[render_size, render_size, 3]` from `camera` ("follow": a camera that
        tracks the payload; "overview": the whole room), or None without `render_mode`."""
        if self.render_mode is None:
            return None
        if self.model is None:
            raise RuntimeError("call reset() before render()")
        if self._renderer is None:
            self._renderer = OffscreenRenderer(self.model, self.render_size, self.render_size, skybox=True)
        if self.camera == "overview":
            return self._renderer.rgb(self.data, "overview")
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        pos, _ = self._payload_pose()
        cam.lookat[:] = [pos[0], pos[1], 0.55]
        cam.distance = 2.4 * self.layout.team_radius + 1.0
        # Look across the payload's long side, a little from one end, so that its shape and every
        # carrier's arms show.
        cam.azimuth = float(np.rad2deg(self.payload_pose2d()[2])) + 60.0
        cam.elevation = -38.0
        return self._renderer.rgb(self.data, cam)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
