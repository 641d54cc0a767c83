"""Scripted closed-loop experts for every embodylab task, and `rollout(env, seed) -> bool`.

An expert reads the privileged simulator state of `env.unwrapped` every step and returns an action in
the env's `ee_delta_pos` action space; being closed-loop, it recovers when an object slips or is bumped.
Register an expert for a task class with `@expert_for("ClassName")`. The team section at the end holds
the cooperative controller of the PettingZoo team envs (`TeamCarryExpert`, one action per agent).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from embodylab.rollout import DrivesEnv, is_team_env, play_episode

_EXPERTS: dict[str, type[Expert]] = {}


def expert_for(env_class_name: str):
    def register(cls: type[Expert]) -> type[Expert]:
        _EXPERTS[env_class_name] = cls
        return cls

    return register


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


def make_expert(env: gym.Env) -> Expert:
    name = type(env.unwrapped).__name__
    if name not in _EXPERTS:
        raise ValueError(f"no scripted expert for {name}; experts exist for: {', '.join(sorted(_EXPERTS))}")
    return _EXPERTS[name](env)


class ExpertPolicy:
    """A scripted expert as a policy of `embodylab.rollout.play_episode`: reset with the episode, then one
    action per call (the expert reads the env's state itself, not the observation)."""

    def __init__(self, expert):
        self.expert = expert

    def reset(self, observation) -> None:
        self.expert.reset()

    def __call__(self, observation):
        return self.expert.act()


class OraclePolicy(DrivesEnv):
    """The household tasks' expert: the symbolic oracle (`embodylab.skills.oracle.run_oracle`) plans from
    the env's atoms and runs the skill primitives, which step the env themselves; `report` is its last
    `RunReport` (skills run, re-plans, failures)."""

    def __init__(self) -> None:
        self.report = None

    def drive(self, env: gym.Env) -> None:
        from embodylab.skills.oracle import run_oracle

        self.report = run_oracle(env)


def expert_policy(env) -> ExpertPolicy | OraclePolicy:
    """The scripted policy of any embodylab env, for `play_episode`: the task's expert (lab), the
    cooperative controller (TeamCarry) or the oracle planner (household).

    Raises:
        ValueError: the env's task has no scripted expert."""
    if is_team_env(env):
        return ExpertPolicy(TeamCarryExpert(env))
    if hasattr(env.unwrapped, "goal_atoms"):  # a household env: the symbolic oracle plans and runs skills
        return OraclePolicy()
    return ExpertPolicy(make_expert(env))


def rollout(env: gym.Env, seed: int) -> bool:
    """Play one episode of `env` with its scripted expert from `reset(seed=seed)`; True if it succeeded.

    Household envs are played by the oracle (`embodylab.skills.oracle.run_oracle`): a symbolic plan
    executed through the skill primitives, re-planned when a skill fails. TeamCarry is played by
    `TeamCarryExpert`. Success is the final step's `info["is_success"]` (for a team, every agent's).
    """
    return play_episode(env, expert_policy(env), seed=seed).success


@expert_for("LabReachEnv")
class ReachExpert(Expert):
    def act(self) -> np.ndarray:
        return self.move_towards(self.env.goal, gripper=1.0, gain=1.0)


@expert_for("LabDrawerEnv")
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
        return self.env.sim.object_states().features[self.object_index, 0:3].astype(np.float64)

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


@expert_for("LabStackEnv")
class StackExpert(_GraspExpert):
    """Pick the red cube, bring it above the blue cube, lower it onto the top face, release, retreat."""

    object_index = 0
    held_width = (0.03, 0.062)

    def carry(self, red: np.ndarray) -> np.ndarray:
        states = self.env.sim.object_states().features.astype(np.float64)
        blue = states[1, 0:3]
        on_blue = blue + [0.0, 0.0, states[0, 15] + states[1, 15]]  # resting: half-heights add up
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


@expert_for("LabPegInsertEnv")
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


@expert_for("LabPushEnv")
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
        cube, cube_velocity, half = cube_state[0:3], cube_state[7:9], float(cube_state[13])
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


@expert_for("LabClutterEnv")
class ClutterExpert(PushExpert):
    """LabPush's expert on the target cube (object 0); distractors in the way are shoved along."""


@expert_for("LabPickPlaceEnv")
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


# ==== Team: the cooperative controller of TeamCarry (PettingZoo ParallelEnv) ==============================
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


def _compose(pose: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """World pose (x, y, yaw) of `offset` given in the frame of `pose`."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    return np.array(
        [
            pose[0] + c * offset[0] - s * offset[1],
            pose[1] + s * offset[0] + c * offset[1],
            pose[2] + offset[2],
        ]
    )


def _relative(pose: np.ndarray, other: np.ndarray) -> np.ndarray:
    """`other` (x, y, yaw) expressed in the frame of `pose`."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    d = other[:2] - pose[:2]
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], _wrap_angle(other[2] - pose[2])])


def _wrap_angle(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


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
        from embodylab.envs.team.layout import stance_pose  # lazily: experts.py must not load pettingzoo

        env = self.env
        self.phase = "approach"
        layout = env.layout
        n = env.n_agents
        self.stances = np.array([stance_pose(h) for h in layout.handles])  # payload frame
        self.normals = np.array([h.normal for h in layout.handles])
        self.grip_heights = np.array([h.pos[2] for h in layout.handles])
        payload = env.payload_pose2d()
        bases = env.base_poses()
        world_stances = np.array([_compose(payload, s) for s in self.stances])
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
                self.formation = np.array([_relative(payload, b) for b in bases])
        else:
            grip = np.ones(env.n_agents, bool)
            if self.phase == "lift":
                self.lift_offset = min(self.LIFT, self.lift_offset + self.LIFT_RATE * dt)
                payload_velocity = np.zeros(3)
                if self.lift_offset >= self.LIFT and env.payload_clearance() > 0.05:
                    from embodylab.envs.team.planning import plan_path

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
                    0.8 * (goal[:2] - payload[:2]), 0.8 * _wrap_angle(goal[2] - payload[2])
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
            stance = _compose(payload, self.stances[h])
            pre = stance.copy()
            normal = _compose(np.r_[0.0, 0.0, payload[2]], np.r_[self.normals[h], 0.0])[:2]
            pre[:2] += normal * self.PRE_STANCE
            if np.linalg.norm(bases[i, :2] - pre[:2]) < 0.1:
                self.pre_stance_reached[i] = True
            target = stance if self.pre_stance_reached[i] else pre
            local = _relative(payload, bases[i])
            local_target = _relative(payload, target)
            zone = self.CARRIER_ZONE
            if not self.pre_stance_reached[i] and _crosses_box(
                local[:2], local_target[:2], hx + zone, hy + zone
            ):
                # Walk around the payload and the carriers already at their handles: a step along a circle
                # outside them, towards the target.
                radius = max(np.hypot(*local[:2]), np.hypot(hx, hy) + self.ORBIT_MARGIN)
                angle = np.arctan2(local[1], local[0])
                delta = _wrap_angle(np.arctan2(local_target[1], local_target[0]) - angle)
                step = angle + np.clip(delta, -0.5, 0.5)
                target = _compose(
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
            velocity[i, 2] = 2.0 * _wrap_angle(stance[2] - bases[i, 2])
            at_stance = (
                self.pre_stance_reached[i]
                and np.linalg.norm(stance[:2] - bases[i, :2]) < 0.04
                and abs(_wrap_angle(stance[2] - bases[i, 2])) < 0.06
            )
            grip[i] = at_stance or env.gripping[i].any()
        return velocity, grip

    def _carry_velocity(self, payload: np.ndarray) -> np.ndarray | None:
        """Payload twist (vx, vy, wz) towards the look-ahead point and the goal yaw; None once the payload
        is at the goal pose (then it is set down)."""
        goal = np.array(self.env.layout.goal)
        distance = np.linalg.norm(goal[:2] - payload[:2])
        yaw_error = _wrap_angle(goal[2] - payload[2])
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
            target = _compose(payload, slot)
            r = target[:2] - payload[:2]
            velocity[i, :2] = (
                twist[:2]
                + twist[2] * np.array([-r[1], r[0]])
                + self.FORMATION_GAIN * (target[:2] - bases[i, :2])
            )
            velocity[i, 2] = twist[2] + self.FORMATION_GAIN * _wrap_angle(target[2] - bases[i, 2])
        return velocity

    def _actions(self, bases: np.ndarray, velocity: np.ndarray, grip: np.ndarray) -> dict[str, np.ndarray]:
        """World-frame base velocities [n, 3] and hand heights -> each agent's normalised action."""
        from embodylab.envs.team.carry import MAX_SPEED, MAX_YAW_RATE
        from embodylab.envs.team.scene import HAND_HEIGHT, LIFT_RANGE

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
