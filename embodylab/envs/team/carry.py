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

Observation (per agent, float32 `Box(171,)` for `max_agents` = 8; `observation.ObservationLayout`
names the columns; every position and velocity in the agent's own frame: x forward, y left, z up;
metres, m/s, rad/s):

<observation table>

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
from embodylab.core.scene import CONTROL_HZ, PHYSICS_TIMESTEP
from embodylab.envs.team.layout import (
    HANDLE_HALF_LENGTH,
    PAYLOAD_SHAPES,
    ROLE_PARAMS,
    ROLES,
    TeamLayout,
    sample_layout,
)
from embodylab.envs.team.metrics import LIFTED_CLEARANCE, CarryMetrics
from embodylab.envs.team.observation import MAX_OBSTACLES, ObservationLayout, ObservationPlan
from embodylab.envs.team.scene import HAND_HEIGHT, LIFT_RANGE
from embodylab.envs.team.scene_cache import SceneCache, SceneViews

MAX_AGENTS = 8
MAX_SPEED = 1.0  # m/s, base speed at action 1
MAX_YAW_RATE = 1.5  # rad/s
GRIP_REACH = 0.08  # m from a hand's centre to a handle bar's axis
SET_DOWN_CLEARANCE = 0.01  # m
SET_DOWN_SPEED = 0.05  # m/s
SUCCESS_DISTANCE = 0.1  # m
SUCCESS_YAW = np.deg2rad(15.0)
ACTION_NAMES = ("vx", "vy", "wz", "hand_height", "grip")
CAMERAS = ("follow", "overview")
# Reductions called as ufunc methods: on arrays this small numpy's Python-level wrappers (`ndarray.sum`,
# `np.min`, `ndarray.any`) cost as much as the reduction itself.
_sum, _min, _any = np.add.reduce, np.minimum.reduce, np.logical_or.reduce


if __doc__:  # the observation table comes from the named layout (absent under python -OO)
    __doc__ = __doc__.replace("<observation table>", ObservationLayout(MAX_AGENTS).table())


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
        self._observation_layout = ObservationLayout(max_agents)
        obs_dim = self._observation_layout.size
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
        self._observation_plans: dict[tuple[int, int], ObservationPlan] = {}  # by (handles, obstacles)
        self._metrics = CarryMetrics(1.0 / CONTROL_HZ)
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
        are written into that compiled model (`scene_cache.SceneCache`), which is what makes a reset cheap.
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
        scene = self._scenes.load(self.layout)
        if scene.model is not self.model:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
            self.model, self.data, self.ids = scene.model, scene.data, scene.ids
            self._bind_views(scene.views)
        self._agent_qpos[:, :3] = self.layout.agent_poses
        mujoco.mj_forward(self.model, self.data)
        self._prepare_episode_constants()
        self.agents = list(self.possible_agents)
        self.steps = 0
        self._grip_on = np.zeros((self.n_agents, 2), bool)
        self._grip_blocked = np.zeros((self.n_agents, 2), bool)  # broken grips wait for a re-press
        self._metrics.reset()
        self._success = False
        self._update_geometry()
        self._prev_distance, self._prev_yaw_error = self._goal_errors()
        info = self._info()
        return self._observations(), {a: dict(info) for a in self.agents}

    def _bind_views(self, views: SceneViews) -> None:
        """The hot path's views into `self.data` (`scene_cache.SceneViews`) as attributes."""
        self._agent_qpos, self._agent_qvel = views.agent_qpos, views.agent_qvel
        self._agent_ctrl = views.agent_ctrl
        self._grip_active, self._hands = views.grip_active, views.hands
        self._payload_qpos, self._payload_qvel = views.payload_qpos, views.payload_qvel
        self._payload_pos, self._payload_rot = views.payload_pos, views.payload_rot
        self._grip_eq = self.ids.grip_equalities

    _UNCOPIED = (  # views into MjData or into the observation plan, rebuilt by `__setstate__`
        "_agent_qpos", "_agent_qvel", "_agent_ctrl", "_grip_active", "_hands", "_payload_qpos",
        "_payload_qvel", "_payload_pos", "_payload_rot", "_observation_plans", "_plan", "_handle_frame",
    )  # fmt: skip

    def __getstate__(self) -> dict:
        """What `copy.deepcopy` and `pickle` copy: everything but the renderer and the views (a copied
        view would be a detached array, and a copied env would then ignore its actions)."""
        state = {k: v for k, v in self.__dict__.items() if k not in self._UNCOPIED}
        state["_renderer"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._observation_plans = {}
        if self.model is None:
            return
        scene = next(s for s in self._scenes.scenes() if s.model is self.model)
        self._bind_views(scene.views)
        self._bind_observation_plan()

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
        self._obstacles = np.zeros((MAX_OBSTACLES, 4))  # x, y, radius, present
        for j, o in enumerate(layout.obstacles):
            self._obstacles[j] = (*o.pos, o.radius, 1.0)
        self._distances = np.empty((n, 2, h))
        self._rel, self._offset = np.empty((n, 2, h, 3)), np.empty((n, 2, h, 3))
        self._along, self._squared = np.empty((n, 2, h, 1, 1)), np.empty((n, 2, h, 1, 1))
        self._bind_observation_plan()

    def _bind_observation_plan(self) -> None:
        """Binds the observation plan of this scene topology (built once per topology) and writes the
        episode's constants into it: goal, obstacles, payload size and shape."""
        key = (len(self._handles_local), len(self.layout.obstacles))
        plan = self._observation_plans.get(key)
        if plan is None:
            plan = ObservationPlan(self._observation_layout, self._role_is_robot, *key)
            self._observation_plans[key] = plan
        plan.write_episode(self._goal, self._obstacles, self._half_extents, self._shape_onehot)
        self._plan, self._handle_frame = plan, plan.handle_frame

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
        self._metrics.update(self.steps, self._clearance, self._grip_on, self._payload_qvel[:3])

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
            self._metrics.lifted
            and self._clearance < SET_DOWN_CLEARANCE
            and math.sqrt(vx * vx + vy * vy + vz * vz) < SET_DOWN_SPEED
            and distance < SUCCESS_DISTANCE
            and yaw_error < SUCCESS_YAW
        )

    def metrics(self) -> dict[str, float | bool]:
        """The TeamHOI-style metrics of the episode so far (see the module docstring)."""
        return self._metrics.as_dict(*self._goal_errors())

    def _info(self, physics_error: str | None = None) -> dict:
        info = {
            "is_success": self._success,
            **self._metrics.as_dict(self._prev_distance, self._prev_yaw_error),
        }
        if physics_error is not None:
            info["physics_error"] = physics_error
        return info

    # ---- observations ---------------------------------------------------------------------------------
    def _observations(self) -> dict[str, np.ndarray]:
        """The observation of every agent (layout in the module docstring, built by `ObservationPlan`) as
        one float32 row per agent (fresh arrays: earlier observations are never overwritten)."""
        obs = self._plan.observe(
            self._agent_qpos,
            self._agent_qvel,
            self._payload_pos,
            self._payload_qvel,
            self._payload_rot,
            self._grip_on,
            self._distances,
            self.room_half,
            1.0 - self.steps / self.max_episode_steps,
        )
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
