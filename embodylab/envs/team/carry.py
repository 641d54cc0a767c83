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
from embodylab.envs.team.scene import HAND_HEIGHT, LIFT_RANGE, compile_scene

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


def _yaw_of(quat: np.ndarray) -> float:
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


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
        """Draws a new layout from the env's generator (re-seeded by `seed`) and compiles its scene.
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
        self.model, self.ids = compile_scene(self.layout, PHYSICS_TIMESTEP)
        self.data = mujoco.MjData(self.model)
        for i, pose in enumerate(self.layout.agent_poses):
            self.data.qpos[self.ids.base_qpos[i]] = pose
        mujoco.mj_forward(self.model, self.data)
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
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
        self._velocity_history: list[np.ndarray] = []
        self._max_lift = 0.0
        self._success = False
        self._prev_distance, self._prev_yaw_error = self._goal_errors()
        infos = {a: self._info() for a in self.agents}
        return self._observations(), infos

    def _prepare_episode_constants(self) -> None:
        layout = self.layout
        self._handles_local = np.array([h.pos for h in layout.handles])  # [n_handles, 3]
        self._handle_normals_local = np.array([h.normal for h in layout.handles])  # [n_handles, 2]
        self._handle_tangents_local = np.array([h.tangent for h in layout.handles])
        self._half_extents = np.array(layout.half_extents)
        hx, hy, _ = self._half_extents
        self._bottom_corners = np.array([[sx * hx, sy * hy, 0.0] for sx in (-1, 1) for sy in (-1, 1)])
        self._shape_onehot = np.array([float(layout.shape == s) for s in PAYLOAD_SHAPES])
        self._goal = np.array(layout.goal)
        self._obstacles = np.zeros((MAX_OBSTACLES, OBSTACLE_DIM + 1))
        for j, o in enumerate(layout.obstacles):
            self._obstacles[j] = (*o.pos, o.radius, 1.0)

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        controls = self._validated_actions(actions)
        m, d, ids = self.model, self.data, self.ids
        yaw = d.qpos[ids.base_qpos[:, 2]]
        cos, sin = np.cos(yaw), np.sin(yaw)
        vx, vy = controls[:, 0] * MAX_SPEED, controls[:, 1] * MAX_SPEED
        d.ctrl[ids.base_actuators[:, 0]] = cos * vx - sin * vy
        d.ctrl[ids.base_actuators[:, 1]] = sin * vx + cos * vy
        d.ctrl[ids.base_actuators[:, 2]] = controls[:, 2] * MAX_YAW_RATE
        lo, hi = LIFT_RANGE
        d.ctrl[ids.lift_actuators] = lo + (controls[:, 3] + 1.0) / 2.0 * (hi - lo)
        self._update_grips(controls[:, 4] > 0.0)
        mujoco.mj_step(m, d, nstep=self.frame_skip)
        self.steps += 1
        physics_error = None
        if not (np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel))):
            physics_error = "the simulation diverged (non-finite state)"
        else:
            self._release_overloaded_grips()
        self._update_metrics()

        distance, yaw_error = self._goal_errors()
        task = 2.0 * (self._prev_distance - distance) + 0.5 * (self._prev_yaw_error - yaw_error)
        self._prev_distance, self._prev_yaw_error = distance, yaw_error
        lifted = self.payload_clearance() > LIFTED_CLEARANCE
        task += 0.05 * lifted
        self._success = self._set_down_at_goal(distance, yaw_error)
        task += 10.0 * self._success
        shaping = self._shaping()
        terminated = self._success
        truncated = self.steps >= self.max_episode_steps or physics_error is not None
        observations = self._observations()
        rewards = {a: float(task + shaping[i]) for i, a in enumerate(self.agents)}
        infos = {a: self._info(physics_error) for a in self.agents}
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
        controls = np.zeros((self.n_agents, len(ACTION_NAMES)))
        controls[:, 3] = -1.0 + 2.0 * (0.0 - LIFT_RANGE[0]) / (LIFT_RANGE[1] - LIFT_RANGE[0])
        controls[:, 4] = -1.0
        for agent, action in actions.items():
            if agent not in self.agents:
                valid = ", ".join(self.agents) or "none (the episode is over)"
                raise ValueError(f"action for unknown or finished agent {agent!r}; live agents: {valid}")
            a = np.asarray(action, dtype=np.float64)
            if a.shape != (len(ACTION_NAMES),):
                raise ValueError(
                    f"action of {agent} has shape {a.shape}; expected ({len(ACTION_NAMES)},) = {ACTION_NAMES}"
                )
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                j = int(bad[0])
                raise ValueError(f"action of {agent} has non-finite entry {j} ({ACTION_NAMES[j]}) = {a[j]}")
            controls[self._index[agent]] = np.clip(a, -1.0, 1.0)
        return controls

    # ---- grips ----------------------------------------------------------------------------------------
    def _payload_pose(self) -> tuple[np.ndarray, np.ndarray]:
        body = self.ids.payload_body
        return self.data.xpos[body], self.data.xmat[body].reshape(3, 3)

    def hand_positions(self) -> np.ndarray:
        """World positions (m) of every hand, `[n_agents, 2, 3]` (left, right)."""
        return self.data.site_xpos[self.ids.hand_sites]

    def handle_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """World centres `[n_handles, 3]` and half-length vectors `[n_handles, 3]` of the handle bars."""
        pos, rot = self._payload_pose()
        centres = pos + self._handles_local @ rot.T
        tangents = np.c_[self._handle_tangents_local, np.zeros(len(self._handles_local))] @ rot.T
        return centres, tangents * HANDLE_HALF_LENGTH

    def _hand_handle_distances(self) -> np.ndarray:
        """Distance (m) from each hand to each handle bar's axis segment, `[n_agents, 2, n_handles]`."""
        centres, half = self.handle_segments()
        hands = self.hand_positions()[:, :, None, :]  # [n, 2, 1, 3]
        rel = hands - centres
        t = np.clip(np.sum(rel * half, -1) / np.sum(half * half, -1), -1.0, 1.0)
        return np.linalg.norm(rel - t[..., None] * half, axis=-1)

    def _update_grips(self, grip_command: np.ndarray) -> None:
        m, d, ids = self.model, self.data, self.ids
        command = np.repeat(grip_command[:, None], 2, axis=1)
        self._grip_blocked &= command  # opening the hand re-arms a grip that broke
        release = self._grip_on & ~command
        within = self._hand_handle_distances().min(axis=-1) < GRIP_REACH
        engage = command & ~self._grip_on & ~self._grip_blocked & within
        if engage.any():
            pos, rot = self._payload_pose()
            hands = self.hand_positions()
            for i, s in zip(*np.nonzero(engage), strict=True):
                eq = ids.grip_equalities[i, s]
                # The hand holds the payload where it touches it: the payload-frame anchor is the hand's
                # current position, so switching the constraint on applies no impulse.
                m.eq_data[eq, 3:6] = rot.T @ (hands[i, s] - pos)
        self._grip_on = (self._grip_on & ~release) | engage
        d.eq_active[ids.grip_equalities.ravel()] = self._grip_on.ravel()

    def _release_overloaded_grips(self) -> None:
        """Opens every hand whose grip constraint force exceeds its role's limit."""
        broken = self._grip_on & (self.grip_forces() > self._grip_limit[:, None])
        if broken.any():
            self._grip_on &= ~broken
            self._grip_blocked |= broken
            self.data.eq_active[self.ids.grip_equalities.ravel()] = self._grip_on.ravel()

    def grip_forces(self) -> np.ndarray:
        """Force (N) each hand's grip constraint carries, `[n_agents, 2]`: the norm of its three equality
        rows of `data.efc_force` at the last physics substep (0 for an open hand)."""
        d = self.data
        rows = d.efc_type[: d.nefc] == mujoco.mjtConstraint.mjCNSTR_EQUALITY
        squared = np.zeros(self.model.neq)
        np.add.at(squared, d.efc_id[: d.nefc][rows], d.efc_force[: d.nefc][rows] ** 2)
        return np.sqrt(squared[self.ids.grip_equalities])

    @property
    def gripping(self) -> np.ndarray:
        """Whether each hand grips the payload, bool `[n_agents, 2]` (a copy)."""
        return self._grip_on.copy()

    # ---- task quantities ------------------------------------------------------------------------------
    def payload_pose2d(self) -> np.ndarray:
        """Payload (x, y, yaw) on the floor plane, world frame (m, rad)."""
        pos = self.data.qpos[self.ids.payload_qpos : self.ids.payload_qpos + 7]
        return np.array([pos[0], pos[1], _yaw_of(pos[3:7])])

    def base_poses(self) -> np.ndarray:
        """Agent base poses (x, y, yaw), world frame, `[n_agents, 3]`."""
        return self.data.qpos[self.ids.base_qpos].copy()

    def payload_clearance(self) -> float:
        """Height (m) of the payload's lowest bottom corner above the floor (0 when it rests on it)."""
        pos, rot = self._payload_pose()
        return float(np.min(pos[2] + self._bottom_corners @ rot[2]))

    def _goal_errors(self) -> tuple[float, float]:
        x, y, yaw = self.payload_pose2d()
        gx, gy, gyaw = self._goal
        return float(np.hypot(gx - x, gy - y)), float(abs(_wrap(gyaw - yaw)))

    def _set_down_at_goal(self, distance: float, yaw_error: float) -> bool:
        speed = np.linalg.norm(self.data.qvel[self.ids.payload_qvel : self.ids.payload_qvel + 3])
        return bool(
            self._lift_step is not None
            and self.payload_clearance() < SET_DOWN_CLEARANCE
            and speed < SET_DOWN_SPEED
            and distance < SUCCESS_DISTANCE
            and yaw_error < SUCCESS_YAW
        )

    def _update_metrics(self) -> None:
        height = self.payload_clearance()
        self._max_lift = max(self._max_lift, height)
        if self._lift_step is None and height > LIFTED_CLEARANCE:
            self._lift_step = self.steps
        if self._lift_step is None:
            return
        self._steps_lifted += 1
        self._steps_all_gripping += bool(np.all(self._grip_on.any(axis=1)))
        dt = 1.0 / CONTROL_HZ
        velocity = self.data.qvel[self.ids.payload_qvel : self.ids.payload_qvel + 3].copy()
        self._velocity_history = (self._velocity_history + [velocity])[-3:]
        if len(self._velocity_history) == 3:
            v0, v1, v2 = self._velocity_history
            self._jerk_sum += float(np.linalg.norm(v2 - 2 * v1 + v0)) / dt**2
            self._jerk_count += 1

    def metrics(self) -> dict[str, float | bool]:
        """The TeamHOI-style metrics of the episode so far (see the module docstring)."""
        distance, yaw_error = self._goal_errors()
        return {
            "final_distance": distance,
            "yaw_error_deg": float(np.rad2deg(yaw_error)),
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
        hand_distance = self._hand_handle_distances().min(axis=-1).mean(axis=1)  # [n_agents]
        gripping = self._grip_on.mean(axis=1)
        return np.where(gripping > 0, 0.0, -0.02 * np.minimum(hand_distance, 2.0)) + 0.02 * gripping

    # ---- observations ---------------------------------------------------------------------------------
    def _observations(self) -> dict[str, np.ndarray]:
        d, ids = self.data, self.ids
        n, max_agents = self.n_agents, self.max_agents
        base = d.qpos[ids.base_qpos]  # [n, 3]
        base_vel = d.qvel[ids.base_qvel]
        yaw = base[:, 2]
        cos, sin = np.cos(yaw), np.sin(yaw)

        def to_local(vec_xy):  # [n, ..., 2] world vectors -> each agent's frame
            x, y = vec_xy[..., 0], vec_xy[..., 1]
            c = cos.reshape((n,) + (1,) * (vec_xy.ndim - 2))
            s = sin.reshape((n,) + (1,) * (vec_xy.ndim - 2))
            return np.stack([c * x + s * y, -s * x + c * y], axis=-1)

        lift = d.qpos[ids.lift_qpos]
        own = np.column_stack(
            [
                base[:, :2] / self.room_half,
                sin,
                cos,
                to_local(base_vel[:, :2]),
                base_vel[:, 2],
                HAND_HEIGHT + lift,
                d.qvel[ids.lift_qvel],
                self._grip_on.astype(float),
                self._role_is_robot,
                np.full(n, 1.0 - self.steps / self.max_episode_steps),
            ]
        )
        pos, rot = self._payload_pose()
        p_yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
        p_vel = d.qvel[ids.payload_qvel : ids.payload_qvel + 6]
        rel_yaw = p_yaw - yaw
        payload = np.column_stack(
            [
                to_local(np.broadcast_to(pos[:2] - base[:, :2], (n, 2))),
                np.full(n, pos[2]),
                np.sin(rel_yaw),
                np.cos(rel_yaw),
                to_local(np.broadcast_to(p_vel[:2], (n, 2))),
                np.full(n, p_vel[2]),
                np.full(n, p_vel[5]),
                np.tile(self._half_extents, (n, 1)),
                np.tile(self._shape_onehot, (n, 1)),
            ]
        )
        gx, gy, gyaw = self._goal
        goal_rel = np.array([gx, gy]) - pos[:2]
        c, s = np.cos(p_yaw), np.sin(p_yaw)
        goal_in_payload = np.array([c * goal_rel[0] + s * goal_rel[1], -s * goal_rel[0] + c * goal_rel[1]])
        goal = np.column_stack(
            [
                to_local(np.array([gx, gy]) - base[:, :2]),
                np.sin(gyaw - yaw),
                np.cos(gyaw - yaw),
                np.tile(goal_in_payload, (n, 1)),
                np.full(n, np.sin(gyaw - p_yaw)),
                np.full(n, np.cos(gyaw - p_yaw)),
            ]
        )
        centres, _ = self.handle_segments()
        n_handles = len(centres)
        normals = np.c_[self._handle_normals_local, np.zeros(n_handles)] @ rot.T
        handle_taken = np.zeros(n_handles)
        if self._grip_on.any():
            nearest = self._hand_handle_distances().argmin(axis=-1)
            handle_taken[np.unique(nearest[self._grip_on])] = 1.0
        handles = np.zeros((n, max_agents, HANDLE_DIM))
        handles[:, :n_handles, 0:2] = to_local(centres[None, :, :2] - base[:, None, :2])
        handles[:, :n_handles, 2] = centres[:, 2]
        handles[:, :n_handles, 3:5] = to_local(np.broadcast_to(normals[None, :, :2], (n, n_handles, 2)))
        handles[:, :n_handles, 5] = handle_taken
        handle_mask = np.zeros((n, max_agents))
        handle_mask[:, :n_handles] = 1.0

        others = np.zeros((n, max_agents - 1, OTHER_DIM))
        other_mask = np.zeros((n, max_agents - 1))
        if n > 1:
            order = (np.arange(n)[:, None] + np.arange(1, n)[None, :]) % n  # [n, n-1]: i+1, i+2, ...
            others[:, : n - 1, 0:2] = to_local(base[order, :2] - base[:, None, :2])
            rel = base[order, 2] - yaw[:, None]
            others[:, : n - 1, 2], others[:, : n - 1, 3] = np.sin(rel), np.cos(rel)
            others[:, : n - 1, 4:6] = to_local(base_vel[order, :2])
            others[:, : n - 1, 6] = self._grip_on.any(axis=1)[order]
            others[:, : n - 1, 7] = self._role_is_robot[order]
            other_mask[:, : n - 1] = 1.0
        obstacles = np.zeros((n, MAX_OBSTACLES, OBSTACLE_DIM))
        obstacles[:, :, 0:2] = to_local(self._obstacles[None, :, :2] - base[:, None, :2])
        obstacles[:, :, 2] = self._obstacles[:, 2]
        obstacles *= self._obstacles[None, :, 3:4]
        obstacle_mask = np.tile(self._obstacles[:, 3], (n, 1))
        flat = np.concatenate(
            [
                own,
                payload,
                goal,
                handles.reshape(n, -1),
                handle_mask,
                others.reshape(n, -1),
                other_mask,
                obstacles.reshape(n, -1),
                obstacle_mask,
            ],
            axis=1,
        ).astype(np.float32)
        return {a: flat[self._index[a]] for a in self.agents}

    def state(self) -> np.ndarray:
        """Global state for a centralised critic (layout in the module docstring), float32 `[185]`."""
        d, ids = self.data, self.ids
        q = d.qpos[ids.payload_qpos : ids.payload_qpos + 7]
        gx, gy, gyaw = self._goal
        head = np.concatenate(
            [
                q,
                d.qvel[ids.payload_qvel : ids.payload_qvel + 6],
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
        base = d.qpos[ids.base_qpos]
        agents[: self.n_agents] = np.column_stack(
            [
                base[:, :2],
                np.sin(base[:, 2]),
                np.cos(base[:, 2]),
                d.qvel[ids.base_qvel],
                HAND_HEIGHT + d.qpos[ids.lift_qpos],
                self._grip_on.astype(float),
                self._role_is_robot,
                np.ones(self.n_agents),
            ]
        )
        handles = np.zeros((self.max_agents, 6))
        centres, _ = self.handle_segments()
        _, rot = self._payload_pose()
        normals = np.c_[self._handle_normals_local, np.zeros(len(centres))] @ rot.T
        handles[: len(centres)] = np.column_stack([centres, normals[:, :2], np.ones(len(centres))])
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
