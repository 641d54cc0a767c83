"""Scripted closed-loop experts of the lab tasks.

An expert reads the privileged simulator state of `env.unwrapped` every step and returns an action in
the env's `ee_delta_pos` action space; being closed-loop, it recovers when an object slips or is bumped.
Register an expert for a task class with `@expert_for(TaskEnv)`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from embodylab.core.scene import HALF_EXTENTS, LINEAR_VELOCITY, POSITION
from embodylab.envs.lab.clutter import LabClutterEnv
from embodylab.envs.lab.drawer import LabDrawerEnv
from embodylab.envs.lab.peg_insert import LabPegInsertEnv
from embodylab.envs.lab.pick_place import LabPickPlaceEnv
from embodylab.envs.lab.push import LabPushEnv
from embodylab.envs.lab.reach import LabReachEnv
from embodylab.envs.lab.stack import LabStackEnv
from embodylab.skills.experts.registry import expert_for


class Expert:
    """Base of the scripted experts: a phase machine over the env's privileged state."""

    def __init__(self, env: gym.Env):
        self.env = env.unwrapped
        if getattr(self.env, "control_mode", "ee_delta_pos") != "ee_delta_pos":
            raise ValueError(
                f"scripted experts act in control_mode 'ee_delta_pos'; this env uses {self.env.control_mode!r}"
            )
        self.phase = "start"

    def reset(self) -> None:
        self.phase = "start"

    def act(self) -> np.ndarray:
        raise NotImplementedError

    # ---- shared motion helpers ----------------------------------------------------------------------
    @property
    def tcp(self) -> np.ndarray:
        return self.env.arm.tcp_pos

    def move_towards(self, target, gripper: float, gain: float = 1.0) -> np.ndarray:
        """Action that moves the tool centre point towards `target` (world frame) at up to full speed."""
        delta = (np.asarray(target) - self.tcp) / self.env.arm.config.max_ee_delta
        action = np.empty(4, dtype=np.float32)
        action[:3] = np.clip(gain * delta, -1.0, 1.0)
        action[3] = gripper
        return action

    def near(self, target, tolerance: float) -> bool:
        return bool(np.linalg.norm(np.asarray(target) - self.tcp) < tolerance)


@expert_for(LabReachEnv)
class ReachExpert(Expert):
    def act(self) -> np.ndarray:
        return self.move_towards(self.env.goal, gripper=1.0, gain=1.0)


@expert_for(LabDrawerEnv)
class DrawerExpert(Expert):
    """Approach the handle bar from the front, close on it, pull along the drawer's axis, keep holding.

    Phases: approach (open, to a point in front of the handle) → insert (open, onto the bar) → close →
    pull (a target that leads the bar along the axis until the opening passes the goal by `overshoot`,
    then holds). If the bar leaves the grip (the tcp drifts off it or the fingers close on nothing) it
    backs off and re-grasps.
    """

    grasp_drop = 0.012
    """metres: the tcp sits this far below the bar's centre so the fingertips stay clear of the table."""
    standoff = 0.07
    overshoot = 0.015
    max_opening = 0.195
    """metres, 5 mm short of the slide joint's limit."""
    lost_width = 0.015
    """metres: fingers closer than this hold nothing (the bar is 24 mm across)."""
    pull_lead = 0.02
    """metres the pull target leads the bar by: a gentle pull (0.5 m/s at most) keeps the grip."""

    def act(self) -> np.ndarray:
        env = self.env
        opening = env.opening()
        axis = env.opening_axis()
        grasp = env.handle_position(opening) - np.array([0.0, 0.0, self.grasp_drop])
        width = env.arm.gripper_width
        if self.phase in ("start", "approach"):
            self.phase = "approach"
            pre = grasp + self.standoff * axis
            if self.near(pre, 0.015):
                self.phase = "insert"
            return self.move_towards(pre, gripper=1.0)
        if self.phase == "insert":
            if self.near(grasp, 0.006):
                self.phase, self.closing_steps = "close", 0
            return self.move_towards(grasp, gripper=1.0)
        if self.phase == "close":
            self.closing_steps += 1
            if self.closing_steps >= 4:
                self.phase = "pull"
            return self.move_towards(grasp, gripper=-1.0)
        # pull (and hold): re-grasp if the bar is no longer between the fingers.
        if width < self.lost_width or not self.near(grasp, 0.025):
            self.phase = "approach"
            return self.move_towards(self.tcp + 0.02 * axis, gripper=1.0)
        # Lead the bar along the axis from where it is now, so the pull never pushes it sideways.
        remaining = min(float(env.goal[0]) + self.overshoot, self.max_opening) - opening
        return self.move_towards(grasp + np.clip(remaining, 0.0, self.pull_lead) * axis, gripper=-1.0)


# ---- LabStack and LabPegInsert ----------------------------------------------------------------------
class _GraspExpert(Expert):
    """Shared phases of the stack and peg experts: approach above an object, descend, close, lift.

    Subclasses name the held object's index, the tcp height (relative to the object's centre) to grasp
    at, and what to do once it is lifted (`carry`). Every step the phase is re-checked against the
    state: an object that moves away from the open gripper is re-approached, and one that leaves a
    closed gripper is grasped again.
    """

    object_index = 0
    grasp_offset = 0.0
    """tcp height above the object's centre when grasping, metres."""
    hover = 0.07
    lift_height = 0.14
    held_width = (0.015, 0.06)
    """gripper widths (m) that mean the fingers closed on the object rather than on nothing."""

    def reset(self) -> None:
        super().reset()
        self.timer = 0
        self.lift_xy = self.tcp[:2].copy()

    def object_pos(self) -> np.ndarray:
        return self.env.sim.object_states().features[self.object_index, POSITION].astype(np.float64)

    def holding(self, obj: np.ndarray) -> bool:
        low, high = self.held_width
        grip_point = self.tcp - [0.0, 0.0, self.grasp_offset]
        return bool(low < self.env.arm.gripper_width < high and np.linalg.norm(obj - grip_point) < 0.03)

    def carry(self, obj: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def steer(
        self, obj: np.ndarray, obj_target, gripper: float, speed: float = 1.0, gain: float = 1.0
    ) -> np.ndarray:
        """Move the tcp so that the held object goes to `obj_target`, at most `speed` × full speed.

        A gain above 1 overcomes the millimetres of steady-state error that the IK controller leaves
        when asked for tiny steps; fine alignment needs it, travel does not."""
        delta = gain * (np.asarray(obj_target) - obj) / self.env.arm.config.max_ee_delta
        # Horizontal and vertical speeds are capped apart so that a long descent never starves the
        # horizontal correction.
        norm = np.linalg.norm(delta[:2])
        if norm > speed:
            delta[:2] *= speed / norm
        action = np.empty(4, dtype=np.float32)
        action[:2] = delta[:2]
        action[2] = np.clip(delta[2], -speed, speed)
        action[3] = gripper
        return action

    def act(self) -> np.ndarray:
        obj = self.object_pos()
        grasp_point = obj + [0.0, 0.0, self.grasp_offset]
        above = grasp_point + [0.0, 0.0, self.hover]
        xy_off = np.linalg.norm(grasp_point[:2] - self.tcp[:2])
        if self.phase in ("lift", "carry", "place", "insert") and not self.holding(obj):
            self.phase = "start"
        if self.phase == "start":
            # Rise before travelling so that the fingers never sweep through the scene.
            self.phase = "approach"
            if self.tcp[2] < above[2] - 0.02 and xy_off > 0.01:
                self.phase = "rise"
        if self.phase == "rise":
            if self.tcp[2] > above[2] - 0.01:
                self.phase = "approach"
            return self.move_towards([*self.tcp[:2], above[2]], gripper=1.0)
        if self.phase == "approach":
            if xy_off < 0.006 and abs(self.tcp[2] - above[2]) < 0.02:
                self.phase = "descend"
            return self.move_towards(above, gripper=1.0)
        if self.phase == "descend":
            if xy_off > 0.015:
                self.phase = "start"
                return self.move_towards(above, gripper=1.0)
            if self.near(grasp_point, 0.006):
                self.phase, self.timer = "grasp", 0
            return self.move_towards(grasp_point, gripper=1.0)
        if self.phase == "grasp":
            self.timer += 1
            if self.timer >= 5:
                self.phase = "lift" if self.holding(obj) else "start"
                self.lift_xy = self.tcp[:2].copy()
            return self.move_towards(grasp_point, gripper=-1.0)
        if self.phase == "lift":
            # Straight up over the grasp point, gently: a sideways drift while the object still
            # touches the table, or a jerk, tilts it in the fingers.
            if self.tcp[2] > self.lift_height - 0.01:
                self.phase = "carry"
            return self.steer(self.tcp, [*self.lift_xy, self.lift_height], gripper=-1.0, speed=0.5, gain=2.0)
        return self.carry(obj)


@expert_for(LabStackEnv)
class StackExpert(_GraspExpert):
    """Pick the red cube, bring it above the blue cube, lower it onto the top face, release, retreat."""

    object_index = 0
    held_width = (0.03, 0.062)

    def carry(self, red: np.ndarray) -> np.ndarray:
        states = self.env.sim.object_states().features.astype(np.float64)
        blue = states[1, POSITION]
        # resting: half-heights add up
        on_blue = blue + [0.0, 0.0, states[0, HALF_EXTENTS][2] + states[1, HALF_EXTENTS][2]]
        if self.phase == "carry":
            above_blue = on_blue + [0.0, 0.0, 0.04]
            if np.linalg.norm(red[:2] - on_blue[:2]) < 0.004 and abs(red[2] - above_blue[2]) < 0.01:
                self.phase = "place"
            return self.steer(red, above_blue, gripper=-1.0)
        if self.phase == "place":
            if np.linalg.norm(red[:2] - on_blue[:2]) > 0.01:
                self.phase = "carry"
            elif red[2] < on_blue[2] + 0.004:
                self.phase, self.timer = "release", 0
            return self.steer(red, on_blue + [0.0, 0.0, 0.001], gripper=-1.0, speed=0.25)
        if self.phase == "release":
            self.timer += 1
            if self.timer >= 4:
                self.phase = "retreat"
            return self.move_towards(self.tcp, gripper=1.0)
        # retreat: go straight up; start over if the red cube did not stay on the blue one.
        if np.linalg.norm(red - on_blue) > 0.015 and self.tcp[2] > red[2] + 0.06:
            self.phase = "start"
        return self.move_towards([*self.tcp[:2], red[2] + 0.1], gripper=1.0)


@expert_for(LabPegInsertEnv)
class PegInsertExpert(_GraspExpert):
    """Grasp the tube near its top, lift it, servo its bottom over the hole, lower it in, release.

    Alignment uses the tube's own bottom-centre (not the tcp): the tube may sit off-centre in the
    fingers, so the tcp target is the tcp plus the tube's remaining error.
    """

    object_index = 0
    grasp_offset = 0.01
    held_width = (0.015, 0.035)

    def carry(self, tube: np.ndarray) -> np.ndarray:
        env = self.env
        bottom = env.tube_bottom()
        hole = env.goal
        mouth = hole + [0.0, 0.0, env.rack_height + 0.015]
        xy_error = np.linalg.norm(bottom[:2] - hole[:2])
        if self.phase == "carry":
            if xy_error < 0.0015 and abs(bottom[2] - mouth[2]) < 0.005:
                self.phase = "insert"
            if xy_error > 0.01:
                return self.steer(bottom, mouth + [0.0, 0.0, 0.02], gripper=-1.0, speed=0.6)
            return self.steer(bottom, mouth, gripper=-1.0, speed=0.2, gain=3.0)
        if self.phase == "insert":
            if xy_error > 0.003 and bottom[2] > hole[2] + env.rack_height - 0.002:
                self.phase = "carry"  # caught on the rim: back up and re-align
            elif bottom[2] < hole[2] + 0.004:
                self.phase, self.timer = "release", 0
            return self.steer(bottom, hole, gripper=-1.0, speed=0.2, gain=3.0)
        if self.phase == "release":
            self.timer += 1
            if self.timer >= 4:
                self.phase = "retreat"
            return self.move_towards(self.tcp, gripper=1.0)
        if np.linalg.norm(bottom - hole) > 0.01 and self.tcp[2] > tube[2] + 0.08:
            self.phase = "start"
        return self.move_towards([*self.tcp[:2], tube[2] + 0.1], gripper=1.0)


# ---- LabPush and LabPickPlace ------------------------------------------------------------------------
def _step_limited(expert: Expert, target, gripper: float, max_step: float) -> np.ndarray:
    """`move_towards` a waypoint at most `max_step` metres from the tool centre point (a speed limit)."""
    offset = np.asarray(target, dtype=float) - expert.tcp
    distance = np.linalg.norm(offset)
    if distance > max_step:
        offset *= max_step / distance
    return expert.move_towards(expert.tcp + offset, gripper)


@expert_for(LabPushEnv)
class PushExpert(Expert):
    """Closed fingers go down behind the cube (as seen from the goal) and push it towards the goal.

    The finger pads grip the cube's face by friction, so while in contact the cube goes where the fingers
    go: every step the fingers move along the current cube→goal line. When that line has turned too far
    from the fingers' bearing on the cube (the push would slide off the face), the fingers back off, lift,
    go round and come down behind the cube again.
    """

    CLOSED = -1.0
    TRAVEL_HEIGHT = 0.09  # tool centre point height (m) when moving around the cube
    PUSH_HEIGHT = 0.02  # tool centre point height (m) the fingers come down to behind the cube
    PUSH_LIFT = 0.01
    """While pushing the fingers aim this much higher (m): finger pads that slide down the cube's face drag
    it into the table, and with pad friction above table friction the push jams."""
    FINGER_RADIUS = 0.015  # half-width of the closed finger pads, m
    STANDOFF = 0.03  # extra gap behind the cube where the fingers come down, m
    PUSH_STEP = 0.015
    """Most commanded advance (m) per control step while pushing: faster pushes make the cube slide on
    past the goal when the fingers stop."""
    SLOWDOWN = 0.5  # the advance is at most this fraction of the cube's remaining distance to the goal
    MAX_BEARING = np.cos(np.radians(50.0))  # least cosine between the push line and the fingers' bearing
    SIDEWAYS_GAIN = 0.5
    DRIFT_GAIN = 1.5
    CONTROL_DT = 0.04  # seconds per control step (25 Hz)
    DONE = 0.015  # cube-to-goal xy distance (m) at which pushing stops

    def reset(self) -> None:
        super().reset()
        self.last_tcp = np.full(3, np.inf)

    def act(self) -> np.ndarray:
        # Near the edge of its reach the arm settles a centimetre or so short of a target: go on from there.
        stalled = bool(np.linalg.norm(self.tcp - self.last_tcp) < 0.002)
        self.last_tcp = self.tcp.copy()
        cube_state = self.env.sim.object_states().features[0]
        cube, cube_velocity, half = (
            cube_state[POSITION],
            cube_state[LINEAR_VELOCITY][:2],
            float(cube_state[HALF_EXTENTS][0]),
        )
        to_goal = self.env.goal[:2] - cube[:2]
        remaining = float(np.linalg.norm(to_goal))
        direction = to_goal / max(remaining, 1e-9)
        contact = half + self.FINGER_RADIUS
        to_cube = cube[:2] - self.tcp[:2]
        distance = float(np.linalg.norm(to_cube))
        bearing = float(to_cube @ direction) / max(distance, 1e-9)
        gap = distance - contact  # roughly, between the fingers and the cube's near face, m
        behind = cube[:2] - direction * (contact + self.STANDOFF)

        if self.phase == "push":
            if remaining < self.DONE:
                self.phase = "hold"
            elif bearing < self.MAX_BEARING or distance < half:
                self.phase = "lift"
        elif self.phase == "hold" and remaining > 2 * self.DONE:
            self.phase = "push"
        elif self.phase in ("start", "approach"):
            off_target = float(np.linalg.norm(self.tcp[:2] - behind))
            if off_target < 0.01 or (stalled and off_target < 0.03):
                self.phase = "descend"
        elif self.phase == "descend":
            height, off_target = self.tcp[2] - self.PUSH_HEIGHT, float(np.linalg.norm(self.tcp[:2] - behind))
            if off_target > 0.03:
                self.phase = "lift"
            elif (height < 0.008 and off_target < 0.008) or (stalled and height < 0.015):
                self.phase = "push"
        if self.phase == "lift" and self.tcp[2] > self.TRAVEL_HEIGHT - 0.01:
            self.phase = "approach"

        if self.phase == "hold":
            return self.move_towards(self.tcp, self.CLOSED)
        if self.phase == "lift":  # back off the cube's face while rising, so as not to drag it up
            away = -to_cube / max(distance, 1e-9) * 0.02
            return self.move_towards([*(self.tcp[:2] + away), self.TRAVEL_HEIGHT], self.CLOSED)
        if self.phase == "descend":
            return self.move_towards([*behind, self.PUSH_HEIGHT], self.CLOSED)
        if self.phase == "push":
            # Along the cube→goal line (closing any gap first), slowing down near the goal.
            advance = min(max(gap, 0.0) + self.SLOWDOWN * remaining, self.PUSH_STEP)
            normal = np.array([-direction[1], direction[0]])
            # The arm does not move quite where it is told: steer against the cube's sideways drift, and
            # keep the fingers centred on the cube's face.
            drift = float(cube_velocity @ normal) * self.CONTROL_DT
            sideways = (self.SIDEWAYS_GAIN * float(to_cube @ normal) - self.DRIFT_GAIN * drift) * normal
            target = [*(self.tcp[:2] + direction * advance + sideways), self.PUSH_HEIGHT + self.PUSH_LIFT]
            return self.move_towards(target, self.CLOSED)
        return self.move_towards([*behind, self.TRAVEL_HEIGHT], self.CLOSED)


@expert_for(LabClutterEnv)
class ClutterExpert(PushExpert):
    """LabPush's expert on the target cube (object 0); distractors in the way are shoved along."""


@expert_for(LabPickPlaceEnv)
class PickPlaceExpert(Expert):
    """Open above the cube, descend, close, check the grasp by the finger gap, lift, carry and hold.

    The grasp is checked every step: if the gap closes past the cube (it slipped out) or the cube leaves
    the fingers, the expert opens and starts over from above the cube's current position.
    """

    OPEN, CLOSED = 1.0, -1.0
    HOVER = 0.1  # tool centre point height above the cube centre before descending, m
    GRASP_DEPTH = 0.005  # tool centre point this far below the cube centre when closing, m
    HOLDING_WIDTH = 0.03  # finger gap (m) above which the closed fingers are holding the 0.04 m cube
    CLOSE_STEPS = 6  # control steps the fingers get to close before the grasp is checked
    CARRY_HEIGHT = 0.08  # minimum cube-centre height while moving across the table, m
    CARRY_STEP = 0.03  # m per control step while carrying
    PLACE_CLEARANCE = 0.003  # hold the cube this far above the goal (m), not pressed into the table

    def reset(self) -> None:
        super().reset()
        self.closing_steps = 0
        self.last_tcp = np.full(3, np.inf)

    def act(self) -> np.ndarray:
        stalled = bool(np.linalg.norm(self.tcp - self.last_tcp) < 0.002)  # settled short of a target
        self.last_tcp = self.tcp.copy()
        cube = self.env.sim.object_position("cube")
        goal = self.env.goal
        grasp_point = cube - [0.0, 0.0, self.GRASP_DEPTH]
        above = cube + [0.0, 0.0, self.HOVER]
        xy_error = float(np.linalg.norm(self.tcp[:2] - cube[:2]))

        if self.phase == "start":
            self.phase = "approach"
        if self.phase == "approach" and (xy_error < 0.01 or (stalled and xy_error < 0.015)):
            self.phase = "descend"
        elif self.phase == "descend":
            if xy_error > 0.02:
                self.phase = "approach"
            elif max(xy_error, abs(self.tcp[2] - grasp_point[2])) < (0.012 if stalled else 0.006):
                self.phase, self.closing_steps = "close", 0
        elif self.phase == "close":
            self.closing_steps += 1
            if self.closing_steps >= self.CLOSE_STEPS:
                self.phase = "carry" if self._holding(cube) else "release"
        elif self.phase == "carry" and not self._holding(cube):
            self.phase = "release"
        if self.phase == "release" and self.env.arm.gripper_width > 0.07:
            self.phase = "approach"

        if self.phase == "approach":
            if self.tcp[2] < above[2] - 0.02 and xy_error > 0.01:  # rise clear of the cube first
                return self.move_towards([*self.tcp[:2], above[2]], self.OPEN)
            return self.move_towards(above, self.OPEN)
        if self.phase == "descend":
            return self.move_towards(grasp_point, self.OPEN)
        if self.phase == "close":  # hold still: pressing on while the pads grip drives the cube down
            return self.move_towards(self.tcp, self.CLOSED)
        if self.phase == "release":
            return self.move_towards([*self.tcp[:2], above[2]], self.OPEN, gain=0.3)
        cube_target = goal.copy()
        if np.linalg.norm(goal[:2] - cube[:2]) > 0.02:  # travel high, then come down onto the goal
            cube_target[2] = max(goal[2], self.CARRY_HEIGHT)
        cube_target[2] = max(cube_target[2], goal[2] + self.PLACE_CLEARANCE)
        return _step_limited(self, self.tcp + (cube_target - cube), self.CLOSED, self.CARRY_STEP)

    def _holding(self, cube: np.ndarray) -> bool:
        between_fingers = bool(np.linalg.norm(cube - self.tcp) < 0.03)
        return between_fingers and self.env.arm.gripper_width > self.HOLDING_WIDTH
