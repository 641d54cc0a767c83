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


def _wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


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
        self._controls = np.empty((n_agents, len(ACTION_NAMES)))
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
            self._bind_views()
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
        tangents = np.c_[-normals[:, 1], normals[:, 0], np.zeros(h)]
        self._handles_local = handles
        self._handle_normals_local = normals
        # One matmul by the payload's rotation gives handle centres, bar half-vectors and face normals.
        self._handle_frame_local = np.r_[handles, tangents * HANDLE_HALF_LENGTH, np.c_[normals, np.zeros(h)]]
        self._handle_frame = np.empty_like(self._handle_frame_local)
        self._half_extents = np.array(layout.half_extents)
        self._hx, self._hy = layout.half_extents[0], layout.half_extents[1]
        self._shape_onehot = np.array([float(layout.shape == s) for s in PAYLOAD_SHAPES])
        self._goal = np.array(layout.goal)
        self._obstacles = np.zeros((MAX_OBSTACLES, OBSTACLE_DIM + 1))
        for j, o in enumerate(layout.obstacles):
            self._obstacles[j] = (*o.pos, o.radius, 1.0)
        self._distances = np.empty((n, 2, h))
        self._rel = np.empty((n, 2, h, 3))
        self._layout_observation(h, len(layout.obstacles))

    def _layout_observation(self, h: int, n_obstacles: int) -> None:
        """Index arrays into the observation `[n_agents, obs_dim]` and the buffers that fill it.

        Everything expressed in an agent's frame goes through one batched rotation: `_planar[i]` holds
        agent i's world-frame 2-vectors `[entities, 2]` in the order shared points (payload, goal,
        handles, obstacles), the other agents' positions, shared vectors (payload velocity, handle
        normals), its own velocity and the other agents' velocities; points are made relative to the
        agent's base, then `_planar @ R(yaw)` rotates them all."""
        n, m = self.n_agents, self.max_agents
        others = n - 1
        handle0 = SELF_DIM + PAYLOAD_DIM + GOAL_DIM
        other0 = handle0 + m * (HANDLE_DIM + 1)
        obstacle0 = other0 + (m - 1) * (OTHER_DIM + 1)
        hs, os_, bs = np.arange(h), np.arange(others), np.arange(n_obstacles)
        pair = lambda cols: np.stack([cols, cols + 1], axis=-1)  # noqa: E731
        points = [
            pair(np.array([13, 28])),
            pair(handle0 + HANDLE_DIM * hs),
            pair(obstacle0 + OBSTACLE_DIM * bs),
        ]
        self._n_shared_points = 2 + h + n_obstacles
        self._n_points = self._n_shared_points + others
        vectors = [pair(np.array([18])), pair(handle0 + HANDLE_DIM * hs + 3), pair(np.array([4]))]
        self._n_shared_vectors = 1 + h
        columns = [*points, pair(other0 + OTHER_DIM * os_), *vectors, pair(other0 + OTHER_DIM * os_ + 4)]
        self._planar_columns = np.concatenate([c.reshape(-1, 2) for c in columns]).ravel()
        self._planar = np.zeros((n, len(self._planar_columns) // 2, 2))
        self._planar_local = np.empty_like(self._planar)
        self._rotation = np.empty((n, 2, 2))
        self._shared_points = np.zeros((self._n_shared_points, 2))
        self._shared_points[1] = self._goal[:2]
        self._shared_points[2 + h :] = self._obstacles[:n_obstacles, :2]
        self._shared_vectors = np.zeros((self._n_shared_vectors, 2))
        # Other agents in the order i+1, i+2, ... (wrapping around).
        self._order = (np.arange(n)[:, None] + np.arange(1, n)[None, :]) % n
        # Angles [n, 3 + others]: own yaw, payload yaw, goal yaw and the others' yaws, relative to the agent.
        self._angles = np.empty((n, 3 + others))
        self._sin, self._cos = np.empty_like(self._angles), np.empty_like(self._angles)
        self._sin_columns = np.r_[2, 16, 30, other0 + OTHER_DIM * os_ + 2]
        self._cos_columns = self._sin_columns + 1
        self._other_grip_columns = other0 + OTHER_DIM * os_ + 6
        # Entries shared by every agent: payload z, vz, yaw rate, goal in the payload frame (2), sin/cos
        # of the payload's yaw error, handle heights, handles taken.
        self._shared = np.zeros(7 + 2 * h)
        self._shared_columns = np.r_[
            15, 20, 21, 32, 33, 34, 35, handle0 + HANDLE_DIM * hs + 2, handle0 + HANDLE_DIM * hs + 5
        ]
        self._handle_taken = self._shared[7 + h :]

        obs = np.zeros((n, self._observation_space.shape[0]))
        obs[:, 11] = self._role_is_robot
        obs[:, 22:25] = self._half_extents
        obs[:, 25:28] = self._shape_onehot
        obs[:, handle0 + m * HANDLE_DIM + hs] = 1.0
        if others:
            obs[:, other0 + OTHER_DIM * os_ + 7] = self._role_is_robot[self._order]
            obs[:, other0 + (m - 1) * OTHER_DIM + os_] = 1.0
        obs[:, obstacle0 + OBSTACLE_DIM * bs + 2] = self._obstacles[:n_obstacles, 2]
        obs[:, obstacle0 + MAX_OBSTACLES * OBSTACLE_DIM + np.arange(MAX_OBSTACLES)] = self._obstacles[:, 3]
        self._obs = obs

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        controls = self._validated_actions(actions)
        m, d = self.model, self.data
        ctrl, yaw = self._agent_ctrl, self._agent_qpos[:, 2]
        cos, sin = np.cos(yaw), np.sin(yaw)
        vx, vy = controls[:, 0] * MAX_SPEED, controls[:, 1] * MAX_SPEED
        ctrl[:, 0] = cos * vx - sin * vy
        ctrl[:, 1] = sin * vx + cos * vy
        np.multiply(controls[:, 2], MAX_YAW_RATE, out=ctrl[:, 2])
        lo, hi = LIFT_RANGE
        ctrl[:, 3] = lo + (controls[:, 3] + 1.0) / 2.0 * (hi - lo)
        self._update_grips(controls[:, 4] > 0.0)
        mujoco.mj_step(m, d, nstep=self.frame_skip)
        self.steps += 1
        physics_error = None
        if not math.isfinite(float(d.qpos.sum()) + float(d.qvel.sum())):
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
        shaping = self._shaping()
        terminated = self._success
        truncated = self.steps >= self.max_episode_steps or physics_error is not None
        observations = self._observations()
        rewards = {a: task + r for a, r in zip(self.agents, shaping.tolist(), strict=True)}
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
        controls[:] = self._idle_action
        for agent, action in actions.items():
            i = self._index.get(agent) if self.agents else None
            if i is None:
                valid = ", ".join(self.agents) or "none (the episode is over)"
                raise ValueError(f"action for unknown or finished agent {agent!r}; live agents: {valid}")
            a = action if isinstance(action, np.ndarray) else np.asarray(action, dtype=np.float64)
            if a.shape != (len(ACTION_NAMES),):
                raise ValueError(
                    f"action of {agent} has shape {a.shape}; expected ({len(ACTION_NAMES)},) = {ACTION_NAMES}"
                )
            controls[i] = a
        if not np.isfinite(controls).all():
            agent, j = divmod(int(np.flatnonzero(~np.isfinite(controls))[0]), len(ACTION_NAMES))
            raise ValueError(
                f"action of {self.possible_agents[agent]} has non-finite entry {j} ({ACTION_NAMES[j]}) = "
                f"{controls[agent, j]}"
            )
        return np.clip(controls, -1.0, 1.0, out=controls)

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
        `_distances` `[n_agents, 2, n_handles]`, for the state the data holds now. The grip check of the
        next step reads them too: nothing moves between the end of one step and the start of the next."""
        pos, rot = self._payload_pose()
        h = len(self._handles_local)
        frame = np.matmul(self._handle_frame_local, rot.T, out=self._handle_frame)
        centres, half = frame[:h], frame[h : 2 * h]
        centres += pos
        rel = np.subtract(self._hands[:, :, None, :], centres, out=self._rel)
        t = np.einsum("nshk,hk->nsh", rel, half) / np.einsum("hk,hk->h", half, half)
        np.clip(t, -1.0, 1.0, out=t)
        rel -= t[..., None] * half
        np.sqrt(np.einsum("nshk,nshk->nsh", rel, rel), out=self._distances)
        self._clearance = self._payload_clearance()

    def _hand_handle_distances(self) -> np.ndarray:
        """Distance (m) from each hand to each handle bar's axis segment, `[n_agents, 2, n_handles]`."""
        return self._distances.copy()

    def _update_grips(self, grip_command: np.ndarray) -> None:
        command = grip_command[:, None]
        self._grip_blocked &= command  # opening the hand re-arms a grip that broke
        engage = command & ~self._grip_on & ~self._grip_blocked
        if engage.any():
            engage &= self._distances.min(axis=-1) < GRIP_REACH
            if engage.any():
                pos, rot = self._payload_pose()
                # The hand holds the payload where it touches it: the payload-frame anchor is the hand's
                # current position, so switching the constraint on applies no impulse.
                self.model.eq_data[self._grip_eq[engage], 3:6] = (self._hands[engage] - pos) @ rot
        self._grip_on &= command
        self._grip_on |= engage
        self._grip_active[:] = self._grip_on

    def _release_overloaded_grips(self) -> None:
        """Opens every hand whose grip constraint force exceeds its role's limit."""
        if not self._grip_on.any():
            return
        broken = self._grip_on & (self.grip_forces() > self._grip_limit[:, None])
        if broken.any():
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
        return math.hypot(gx - x, gy - y), abs(_wrap(gyaw - self._payload_yaw()))

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
        self._steps_all_gripping += bool(self._grip_on.any(axis=1).all())
        history = self._velocity_history
        history.append(tuple(self._payload_qvel[:3].tolist()))
        if len(history) > 3:
            del history[0]
        if len(history) == 3:
            jerk = [c - 2 * b + a for a, b, c in zip(*history, strict=True)]
            self._jerk_sum += math.sqrt(sum(j * j for j in jerk)) * CONTROL_HZ**2
            self._jerk_count += 1

    def metrics(self) -> dict[str, float | bool]:
        """The TeamHOI-style metrics of the episode so far (see the module docstring)."""
        distance, yaw_error = self._goal_errors()
        return {
            "final_distance": distance,
            "yaw_error_deg": math.degrees(yaw_error),
            "cooperation_time": self._steps_all_gripping / self._steps_lifted if self._steps_lifted else 0.0,
            "payload_jerk": self._jerk_sum / self._jerk_count if self._jerk_count else 0.0,
            "lifted": self._lift_step is not None,
            "max_lift_height": self._max_lift,
        }

    def _info(self, physics_error: str | None = None) -> dict:
        info = {"is_success": self._success, **self.metrics()}
        if physics_error is not None:
            info["physics_error"] = physics_error
        return info

    def _shaping(self) -> np.ndarray:
        hand_distance = self._distances.min(axis=-1).mean(axis=1)  # [n_agents]
        gripping = self._grip_on.mean(axis=1)
        return np.where(gripping > 0, 0.0, -0.02 * np.minimum(hand_distance, 2.0)) + 0.02 * gripping

    # ---- observations ---------------------------------------------------------------------------------
    def _observations(self) -> dict[str, np.ndarray]:
        """Fills the preallocated observation `[n_agents, obs_dim]` (layout in the module docstring) and
        returns one float32 row per agent (fresh arrays: earlier observations are never overwritten)."""
        obs, n, h = self._obs, self.n_agents, len(self._handles_local)
        qpos, qvel = self._agent_qpos, self._agent_qvel
        xy, vel_xy = qpos[:, :2], qvel[:, :2]
        pos, rot = self._payload_pose()
        p_vel = self._payload_qvel
        p_yaw = math.atan2(rot[1, 0], rot[0, 0])
        gx, gy, gyaw = self.layout.goal
        frame = self._handle_frame
        centres, normals = frame[:h], frame[2 * h :]

        angles, yaw = self._angles, qpos[:, 2]
        angles[:, 0] = yaw
        np.subtract(p_yaw, yaw, out=angles[:, 1])
        np.subtract(gyaw, yaw, out=angles[:, 2])
        np.subtract(qpos[self._order, 2], yaw[:, None], out=angles[:, 3:])
        sin, cos = np.sin(angles, out=self._sin), np.cos(angles, out=self._cos)
        obs[:, self._sin_columns] = sin
        obs[:, self._cos_columns] = cos

        planar, shared = self._planar, self._shared_points
        shared[0] = pos[:2]
        shared[2 : 2 + h] = centres[:, :2]
        ns, npts = self._n_shared_points, self._n_points
        planar[:, :ns] = shared
        planar[:, ns:npts] = xy[self._order]
        planar[:, :npts] -= xy[:, None]
        vectors = self._shared_vectors
        vectors[0] = p_vel[:2]
        vectors[1:] = normals[:, :2]
        nv = npts + self._n_shared_vectors
        planar[:, npts:nv] = vectors
        planar[:, nv] = vel_xy
        planar[:, nv + 1 :] = vel_xy[self._order]
        rotation = self._rotation  # [[c, -s], [s, c]]: a row vector times it is the vector in the agent frame
        rotation[:, 0, 0] = rotation[:, 1, 1] = cos[:, 0]
        rotation[:, 1, 0] = sin[:, 0]
        np.negative(sin[:, 0], out=rotation[:, 0, 1])
        obs[:, self._planar_columns] = np.matmul(planar, rotation, out=self._planar_local).reshape(n, -1)

        np.divide(xy, self.room_half, out=obs[:, 0:2])
        obs[:, 6] = qvel[:, 2]
        np.add(qpos[:, 3], HAND_HEIGHT, out=obs[:, 7])
        obs[:, 8] = qvel[:, 3]
        obs[:, 9:11] = self._grip_on
        obs[:, 12] = 1.0 - self.steps / self.max_episode_steps
        obs[:, self._other_grip_columns] = self._grip_on.any(axis=1)[self._order]

        goal_x, goal_y = gx - pos[0], gy - pos[1]
        c, s = math.cos(p_yaw), math.sin(p_yaw)
        values = self._shared
        values[0:7] = (
            pos[2],
            p_vel[2],
            p_vel[5],
            c * goal_x + s * goal_y,
            -s * goal_x + c * goal_y,
            math.sin(gyaw - p_yaw),
            math.cos(gyaw - p_yaw),
        )
        values[7 : 7 + h] = centres[:, 2]
        taken = self._handle_taken
        taken[:] = 0.0
        if self._grip_on.any():
            taken[self._distances.argmin(axis=-1)[self._grip_on]] = 1.0
        obs[:, self._shared_columns] = values
        flat = obs.astype(np.float32)
        return dict(zip(self.agents, flat, strict=True))

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
