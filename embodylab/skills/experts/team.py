"""The cooperative controller of the PettingZoo team env TeamCarry: `TeamCarryExpert`, one action per agent."""

from __future__ import annotations

import numpy as np

from embodylab.core.geometry import se2_compose, se2_relative, wrap_angle
from embodylab.envs.team.carry import MAX_SPEED, MAX_YAW_RATE, TeamCarryEnv
from embodylab.envs.team.layout import stance_pose
from embodylab.envs.team.planning import plan_path
from embodylab.envs.team.scene import HAND_HEIGHT, LIFT_RANGE
from embodylab.skills.experts.registry import expert_for


def assign_handles(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost one-to-one assignment of agents (rows) to handles (columns) of a square `cost`
    matrix, by dynamic programming over subsets of handles (exact; fine for the at most 8 agents).
    Returns the handle of each agent."""
    n = len(cost)
    best = np.full(1 << n, np.inf)
    choice = np.zeros(1 << n, dtype=np.int64)
    best[0] = 0.0
    for used in range(1 << n):
        if not np.isfinite(best[used]):
            continue
        agent = bin(used).count("1")  # agents are assigned in order, one per step
        if agent == n:
            continue
        for handle in range(n):
            if not used >> handle & 1:
                total = best[used] + cost[agent, handle]
                if total < best[used | 1 << handle]:
                    best[used | 1 << handle], choice[used | 1 << handle] = total, handle
    assignment, used = np.zeros(n, dtype=np.int64), (1 << n) - 1
    for agent in range(n - 1, -1, -1):
        assignment[agent] = choice[used]
        used &= ~(1 << choice[used])
    return assignment


@expert_for(TeamCarryEnv)
class TeamCarryExpert:
    """Scripted cooperative team for TeamCarry: handle assignment, approach, synchronous lift,
    formation-keeping transport along a planned path, set-down.

    One phase for the whole team (a shared plan, as if the carriers talk to each other):
    `approach` — each agent takes the handle of a minimum-total-distance assignment, walks to a point
    in front of it (around the payload when the straight line would cross it), steps in and grips;
    `lift` — once every hand grips, every agent raises its hands by the same ramp; `transport` — the
    payload follows a path planned around the obstacles (`plan_path`, the team's disc kept clear) and
    turns to the goal yaw; every agent moves with the payload's rigid-body velocity at its grip pose
    plus a correction towards that pose, so the formation keeps its shape; `set_down` — at the goal
    the hands come down together. Reads the env's privileged state (payload pose, layout).
    """

    LIFT = 0.12  # m the hands rise above their grip height
    LIFT_RATE = 0.12  # m/s of the synchronous lift and set-down ramps
    CARRY_SPEED = 0.45  # m/s
    TURN_RATE = 0.35  # rad/s
    WALK_GAIN, WALK_SPEED = 2.0, 0.8  # 1/s and m/s while approaching
    FORMATION_GAIN = 2.0  # 1/s, pulls each carrier back to its grip pose relative to the payload
    LOOKAHEAD = 0.6  # m along the path
    PRE_STANCE = 0.5  # m out from the stance, from where an agent steps straight in
    PERSONAL_SPACE = 0.65  # m between agents' axes while walking
    CARRIER_ZONE = 0.8  # m around the payload where carriers stand: walkers cross it only straight in
    ORBIT_MARGIN = 1.05  # m beyond the payload's half-diagonal of the circle walkers go around on

    def __init__(self, env):
        self.env = env.unwrapped

    def reset(self) -> None:
        env = self.env
        self.phase = "approach"
        layout = env.layout
        n = env.n_agents
        self.stances = np.array([stance_pose(h) for h in layout.handles])  # payload frame
        self.normals = np.array([h.normal for h in layout.handles])
        self.grip_heights = np.array([h.pos[2] for h in layout.handles])
        payload = env.payload_pose2d()
        bases = env.base_poses()
        world_stances = np.array([se2_compose(payload, s) for s in self.stances])
        cost = np.linalg.norm(bases[:, None, :2] - world_stances[None, :, :2], axis=-1)
        self.handle_of = assign_handles(cost)
        self.pre_stance_reached = np.zeros(n, bool)
        self.lift_offset = 0.0
        self.formation: np.ndarray | None = None
        self.path: list[np.ndarray] = []
        self.waypoint = 1
        self.steps = 0

    def act(self) -> dict[str, np.ndarray]:
        env = self.env
        self.steps += 1
        payload = env.payload_pose2d()
        bases = env.base_poses()
        gripping = env.gripping
        dt = env.frame_skip * env.model.opt.timestep
        if self.phase == "approach":
            velocity, grip = self._approach(payload, bases)
            all_gripping = gripping.all()
            if all_gripping or (self.steps > 400 and gripping.any(axis=1).all()):
                self.phase = "lift"
                # Each carrier's pose in the payload frame at the moment of lifting is its formation slot.
                self.formation = np.array([se2_relative(payload, b) for b in bases])
        else:
            grip = np.ones(env.n_agents, bool)
            if self.phase == "lift":
                self.lift_offset = min(self.LIFT, self.lift_offset + self.LIFT_RATE * dt)
                payload_velocity = np.zeros(3)
                if self.lift_offset >= self.LIFT and env.payload_clearance() > 0.05:
                    self.phase = "transport"
                    path = plan_path(
                        payload[:2],
                        env.layout.goal[:2],
                        [(o.pos, o.radius) for o in env.layout.obstacles],
                        env.layout.team_radius,
                        env.layout.room_half,
                    )
                    self.path = path if path is not None else [payload[:2], np.array(env.layout.goal[:2])]
                    self.waypoint = 1
            if self.phase == "transport":
                payload_velocity = self._carry_velocity(payload)
                if payload_velocity is None:
                    self.phase = "set_down"
            if self.phase == "set_down":
                self.lift_offset = max(-0.04, self.lift_offset - self.LIFT_RATE * dt)
                goal = np.array(env.layout.goal)
                payload_velocity = np.r_[
                    0.8 * (goal[:2] - payload[:2]), 0.8 * wrap_angle(goal[2] - payload[2])
                ]
            velocity = self._formation_velocity(payload, bases, payload_velocity)
        return self._actions(bases, velocity, grip)

    # ---- phases -----------------------------------------------------------------------------------------
    def _approach(self, payload: np.ndarray, bases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        env = self.env
        n = env.n_agents
        hx, hy, _ = env.layout.half_extents
        velocity = np.zeros((n, 3))
        grip = np.zeros(n, bool)
        for i in range(n):
            h = self.handle_of[i]
            stance = se2_compose(payload, self.stances[h])
            pre = stance.copy()
            normal = se2_compose(np.r_[0.0, 0.0, payload[2]], np.r_[self.normals[h], 0.0])[:2]
            pre[:2] += normal * self.PRE_STANCE
            if np.linalg.norm(bases[i, :2] - pre[:2]) < 0.1:
                self.pre_stance_reached[i] = True
            target = stance if self.pre_stance_reached[i] else pre
            local = se2_relative(payload, bases[i])
            local_target = se2_relative(payload, target)
            zone = self.CARRIER_ZONE
            if not self.pre_stance_reached[i] and _crosses_box(
                local[:2], local_target[:2], hx + zone, hy + zone
            ):
                # Walk around the payload and the carriers already at their handles: a step along a circle
                # outside them, towards the target.
                radius = max(np.hypot(*local[:2]), np.hypot(hx, hy) + self.ORBIT_MARGIN)
                angle = np.arctan2(local[1], local[0])
                delta = wrap_angle(np.arctan2(local_target[1], local_target[0]) - angle)
                step = angle + np.clip(delta, -0.5, 0.5)
                target = se2_compose(
                    payload, np.r_[radius * np.cos(step), radius * np.sin(step), local_target[2]]
                )
            error = target[:2] - bases[i, :2]
            v = self.WALK_GAIN * error
            for j in range(n):  # keep a personal space while walking
                away = bases[i, :2] - bases[j, :2]
                dist = np.linalg.norm(away)
                if j != i and dist < self.PERSONAL_SPACE and not self.pre_stance_reached[i]:
                    v += 1.5 * (self.PERSONAL_SPACE - dist) * away / max(dist, 1e-6)
            speed = np.linalg.norm(v)
            velocity[i, :2] = v * min(1.0, self.WALK_SPEED / max(speed, 1e-9))
            velocity[i, 2] = 2.0 * wrap_angle(stance[2] - bases[i, 2])
            at_stance = (
                self.pre_stance_reached[i]
                and np.linalg.norm(stance[:2] - bases[i, :2]) < 0.04
                and abs(wrap_angle(stance[2] - bases[i, 2])) < 0.06
            )
            grip[i] = at_stance or env.gripping[i].any()
        return velocity, grip

    def _carry_velocity(self, payload: np.ndarray) -> np.ndarray | None:
        """Payload twist (vx, vy, wz) towards the look-ahead point and the goal yaw; None once the payload
        is at the goal pose (then it is set down)."""
        goal = np.array(self.env.layout.goal)
        distance = np.linalg.norm(goal[:2] - payload[:2])
        yaw_error = wrap_angle(goal[2] - payload[2])
        if distance < 0.03 and abs(yaw_error) < np.deg2rad(2.0):
            return None
        while (
            self.waypoint < len(self.path) - 1
            and np.linalg.norm(self.path[self.waypoint] - payload[:2]) < self.LOOKAHEAD
        ):
            self.waypoint += 1
        target = np.asarray(self.path[self.waypoint])
        error = target - payload[:2]
        remaining = np.linalg.norm(error) + sum(
            np.linalg.norm(np.asarray(self.path[j + 1]) - self.path[j])
            for j in range(self.waypoint, len(self.path) - 1)
        )
        speed = min(self.CARRY_SPEED, 0.8 * remaining)
        v = error / max(np.linalg.norm(error), 1e-9) * speed
        w = np.clip(1.0 * yaw_error, -self.TURN_RATE, self.TURN_RATE)
        return np.r_[v, w]

    def _formation_velocity(self, payload: np.ndarray, bases: np.ndarray, twist: np.ndarray) -> np.ndarray:
        """Each carrier moves with the payload's rigid-body velocity at its slot, plus a pull to the slot."""
        velocity = np.zeros((len(bases), 3))
        for i, slot in enumerate(self.formation):
            target = se2_compose(payload, slot)
            r = target[:2] - payload[:2]
            velocity[i, :2] = (
                twist[:2]
                + twist[2] * np.array([-r[1], r[0]])
                + self.FORMATION_GAIN * (target[:2] - bases[i, :2])
            )
            velocity[i, 2] = twist[2] + self.FORMATION_GAIN * wrap_angle(target[2] - bases[i, 2])
        return velocity

    def _actions(self, bases: np.ndarray, velocity: np.ndarray, grip: np.ndarray) -> dict[str, np.ndarray]:
        """World-frame base velocities [n, 3] and hand heights -> each agent's normalised action."""
        env = self.env
        actions = {}
        lo, hi = LIFT_RANGE
        for i, agent in enumerate(env.agents):
            c, s = np.cos(bases[i, 2]), np.sin(bases[i, 2])
            vx, vy, wz = velocity[i]
            hand = self.grip_heights[self.handle_of[i]] + self.lift_offset
            actions[agent] = np.clip(
                np.array(
                    [
                        (c * vx + s * vy) / MAX_SPEED,
                        (-s * vx + c * vy) / MAX_SPEED,
                        wz / MAX_YAW_RATE,
                        -1.0 + 2.0 * (hand - HAND_HEIGHT - lo) / (hi - lo),
                        1.0 if grip[i] else -1.0,
                    ]
                ),
                -1.0,
                1.0,
            ).astype(np.float32)
        return actions


def _crosses_box(a: np.ndarray, b: np.ndarray, hx: float, hy: float) -> bool:
    """Whether the segment a-b (payload frame) passes through the box |x| < hx, |y| < hy."""
    for t in np.linspace(0.0, 1.0, 21):
        p = a + t * (b - a)
        if abs(p[0]) < hx and abs(p[1]) < hy:
            return True
    return False
