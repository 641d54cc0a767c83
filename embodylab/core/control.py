"""Controllers that turn a normalised action in [-1, 1] into position-actuator targets.

`ee_delta_pos`: (dx, dy, dz, gripper). The Cartesian part moves the tool centre point by up to
`max_ee_delta` metres per control step (world frame) while the hand keeps its reset orientation;
targets are solved by damped-least-squares IK on `mj_jacSite`, with a null-space pull towards the home
posture. `joint_delta_pos`: (dq1..dq7, gripper), up to `max_joint_delta` radians per step. The gripper
entry maps -1 → closed, +1 → fully open.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from embodylab.core.robot import FINGER_TRAVEL, MobileBaseNames, PandaNames
from embodylab.core.scene import MobileBaseSpec

CONTROL_MODES = ("ee_delta_pos", "joint_delta_pos")


@dataclass
class ControllerConfig:
    max_ee_delta: float = 0.05
    """metres per control step for the ee_delta_pos mode."""
    max_joint_delta: float = 0.1
    """radians per control step for the joint_delta_pos mode."""
    ik_damping: float = 0.05
    orientation_gain: float = 1.0
    posture_gain: float = 0.2


def _contiguous(indices, what: str) -> slice:
    """The slice covering `indices`, which must be consecutive (cheap views on the hot path)."""
    indices = np.asarray(indices)
    if not np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        raise ValueError(f"{what} must be consecutive in the model; got {indices.tolist()}")
    return slice(int(indices[0]), int(indices[0]) + len(indices))


class PandaArm:
    """Reads and commands the Panda in a compiled scene with every id cached at construction.

    The hot path (`command_tcp_delta`, `proprio`) works on slices of MjData and preallocated buffers and
    calls MuJoCo's own small-matrix routines, so it allocates nothing per step."""

    PROPRIO_DIM = 21

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        names: PandaNames,
        home_qpos,
        config: ControllerConfig | None = None,
    ):
        self.model, self.data, self.names = model, data, names
        self.config = config or ControllerConfig()
        joints = [model.joint(n) for n in names.joints]
        self.qpos_slice = _contiguous([j.qposadr[0] for j in joints], "arm joint qpos")
        self.dof_slice = _contiguous([j.dofadr[0] for j in joints], "arm joint dofs")
        fingers = [model.joint(n) for n in names.fingers]
        self.finger_qpos_slice = _contiguous([j.qposadr[0] for j in fingers], "finger qpos")
        self.finger_dof_slice = _contiguous([j.dofadr[0] for j in fingers], "finger dofs")
        self.actuator_slice = _contiguous([model.actuator(n).id for n in names.actuators], "arm actuators")
        self.gripper_actuator_id = model.actuator(names.gripper_actuator).id
        self.tcp_site_id = model.site(names.tcp_site).id
        self.hand_body_id = model.body(names.hand_body).id
        self.finger_body_ids = np.array([model.body(n).id for n in names.finger_bodies])
        self.joint_lower = model.jnt_range[[j.id for j in joints], 0].copy()
        self.joint_upper = model.jnt_range[[j.id for j in joints], 1].copy()
        self.home_qpos = np.asarray(home_qpos, dtype=float)
        self._scaled_home_gain = self.config.posture_gain
        self._scaled_home = self._scaled_home_gain * self.home_qpos
        self.target_quat = np.array([1.0, 0.0, 0.0, 0.0])
        """Orientation (w, x, y, z) the hand holds in ee_delta_pos mode: the one it had at reset."""
        # One [6, nv] Jacobian whose halves mj_jacSite fills: the arm's columns come out in one copy.
        self._full_jac = np.zeros((6, model.nv))
        self._jac = np.zeros((6, 7))
        self._error = np.zeros(6)
        self._gram = np.zeros((6, 6))
        self._solution = np.zeros(6)
        self._posture_step = np.zeros(7)
        self._rotation_error = np.zeros(3)
        self._jac_posture = np.zeros(6)
        self._target = np.zeros(7)
        self._site_velocity = np.zeros(6)
        self._damping_flat = (self.config.ik_damping**2 * np.eye(6)).reshape(-1)
        self._tcp_low = self._tcp_high = None
        self._tcp_goal = np.zeros(3)
        self.__dict__.update(self._views())

    def _views(self) -> dict[str, np.ndarray]:
        """Views into MjData and into the controller's own buffers, by attribute name, made once: MjData's
        arrays keep their memory, and slicing them costs more than the small-matrix routines that read
        them. Copying (pickle, deepcopy) would turn a view into a detached array, so a copy of the
        controller leaves them out and makes them anew on its own MjData and buffers."""
        d, jac = self.data, self._full_jac
        return {
            "_jacp": jac[:3],
            "_jacr": jac[3:],
            "_arm_jac": jac[:, self.dof_slice],
            "_gram_flat": self._gram.reshape(-1),
            "_error_pos": self._error[:3],
            "_error_rot": self._error[3:],
            "_site_linear_velocity": self._site_velocity[3:6],
            "_q": d.qpos[self.qpos_slice],
            "_qdot": d.qvel[self.dof_slice],
            "_tcp_pos": d.site_xpos[self.tcp_site_id],
            "_fingers": d.qpos[self.finger_qpos_slice],
            "_hand_quat": d.xquat[self.hand_body_id],
            "_arm_ctrl": d.ctrl[self.actuator_slice],
        }

    def __getstate__(self) -> dict:
        views = self._views()
        return {k: v for k, v in self.__dict__.items() if k not in views}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.update(self._views())

    def set_tcp_bounds(self, low, high) -> None:
        """Keep ee_delta_pos targets inside the box [low, high] (world frame, metres): a step that would
        leave it moves the tool centre point to the box's face instead, as Meta-World bounds its hand."""
        low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        if low.shape != (3,) or high.shape != (3,) or not (low < high).all():
            raise ValueError(f"tcp bounds must be two 3-vectors with low < high; got {low}, {high}")
        self._tcp_low, self._tcp_high = low, high

    # ---- reset ------------------------------------------------------------------------------------
    def reset(self, qpos=None, gripper_open: bool = True) -> None:
        """Place the arm at `qpos` (home by default), at rest, with actuator targets matching."""
        q = self.home_qpos if qpos is None else np.asarray(qpos, dtype=float)
        d = self.data
        d.qpos[self.qpos_slice] = q
        d.qvel[self.dof_slice] = 0.0
        width = FINGER_TRAVEL if gripper_open else 0.0
        d.qpos[self.finger_qpos_slice] = width
        d.qvel[self.finger_dof_slice] = 0.0
        d.ctrl[self.actuator_slice] = q
        d.ctrl[self.gripper_actuator_id] = width
        mujoco.mj_kinematics(self.model, d)
        # The tcp site carries no rotation of its own: its orientation is the hand body's.
        self.target_quat[:] = d.xquat[self.hand_body_id]

    def set_home(self, qpos) -> None:
        """Make `qpos` the posture `reset` places the arm in and the IK's null space pulls towards."""
        qpos = np.asarray(qpos, dtype=float)
        if qpos.shape != self.home_qpos.shape or not np.isfinite(qpos).all():
            raise ValueError(f"home qpos must be {self.home_qpos.shape[0]} finite joint angles; got {qpos}")
        self.home_qpos = qpos.copy()
        self._scaled_home = self._scaled_home_gain * self.home_qpos

    def posture_for_tcp(self, tcp_position, iterations: int = 200, tolerance: float = 1e-5) -> np.ndarray:
        """Joint angles, within the joint limits, that put the tool centre point at `tcp_position` (world,
        metres) with the hand in its home orientation; solved by damped least squares from the home
        posture on a scratch `MjData`, so the simulation is untouched.

        Raises:
            ValueError: the position is out of reach (the residual stays above 1 mm)."""
        target = np.asarray(tcp_position, dtype=float)
        scratch = mujoco.MjData(self.model)
        scratch.qpos[self.qpos_slice] = self.home_qpos
        mujoco.mj_kinematics(self.model, scratch)
        home_quat = scratch.xquat[self.hand_body_id].copy()
        jacp, jacr = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        error, rotation = np.zeros(6), np.zeros(3)
        damping = self.config.ik_damping**2 * np.eye(6)
        for _ in range(iterations):
            error[:3] = target - scratch.site_xpos[self.tcp_site_id]
            mujoco.mju_subQuat(rotation, home_quat, scratch.xquat[self.hand_body_id])
            mujoco.mju_rotVecQuat(error[3:], rotation, scratch.xquat[self.hand_body_id])
            if np.linalg.norm(error) < tolerance:
                break
            mujoco.mj_comPos(self.model, scratch)
            mujoco.mj_jacSite(self.model, scratch, jacp, jacr, self.tcp_site_id)
            jac = np.vstack([jacp, jacr])[:, self.dof_slice]
            step = jac.T @ np.linalg.solve(jac @ jac.T + damping, error)
            q = scratch.qpos[self.qpos_slice] + step
            scratch.qpos[self.qpos_slice] = np.clip(q, self.joint_lower, self.joint_upper)
            mujoco.mj_kinematics(self.model, scratch)
        residual = float(np.linalg.norm(target - scratch.site_xpos[self.tcp_site_id]))
        if residual > 1e-3:
            raise ValueError(
                f"tcp position {target.tolist()} is out of the arm's reach ({residual:.4f} m short)"
            )
        return scratch.qpos[self.qpos_slice].copy()

    # ---- state ------------------------------------------------------------------------------------
    @property
    def qpos(self) -> np.ndarray:
        return self.data.qpos[self.qpos_slice]

    @property
    def qvel(self) -> np.ndarray:
        return self.data.qvel[self.dof_slice]

    @property
    def tcp_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.tcp_site_id]

    @property
    def gripper_width(self) -> float:
        """Distance between the finger pads, metres."""
        return float(self.data.qpos[self.finger_qpos_slice].sum())

    def proprio(self, out: np.ndarray) -> np.ndarray:
        """[q 7, qdot 7, tcp position 3, tcp linear velocity 3 (world), gripper width 1] into `out[21]`."""
        out[0:7] = self._q
        out[7:14] = self._qdot
        out[14:17] = self._tcp_pos
        mujoco.mj_objectVelocity(
            self.model, self.data, mujoco.mjtObj.mjOBJ_SITE, self.tcp_site_id, self._site_velocity, 0
        )
        out[17:20] = self._site_linear_velocity
        fingers = self._fingers
        out[20] = fingers[0] + fingers[1]
        return out

    # ---- commands ---------------------------------------------------------------------------------
    def set_gripper(self, command: float) -> None:
        self.data.ctrl[self.gripper_actuator_id] = (command + 1.0) * 0.5 * FINGER_TRAVEL

    def command_joint_delta(self, delta_normalised: np.ndarray) -> None:
        target = self.qpos + delta_normalised * self.config.max_joint_delta
        ctrl = self.data.ctrl[self.actuator_slice]
        np.minimum(np.maximum(target, self.joint_lower, out=target), self.joint_upper, out=ctrl)

    def command_tcp_delta(self, delta_normalised: np.ndarray) -> None:
        """Damped-least-squares IK step towards tcp + delta with the reset orientation held.

        With e the 6-D pose error and dq0 a pull towards the home posture, the step is
        dq = dq0 + Jᵀ (J Jᵀ + λ² I)⁻¹ (e − J dq0): the damped form of dq0 projected into J's null space.
        Written with MuJoCo's small-matrix routines and preallocated buffers: this runs every step."""
        cfg = self.config
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.tcp_site_id)
        jac, err, posture, q = self._jac, self._error, self._posture_step, self._q
        np.copyto(jac, self._arm_jac)
        mujoco.mju_scl(self._error_pos, delta_normalised, cfg.max_ee_delta)
        if self._tcp_low is not None:
            goal = self._tcp_goal
            np.add(self._tcp_pos, self._error_pos, out=goal)
            np.minimum(np.maximum(goal, self._tcp_low, out=goal), self._tcp_high, out=goal)
            np.subtract(goal, self._tcp_pos, out=self._error_pos)
        # Rotation from the hand's current orientation to the target, in the hand frame, then world.
        mujoco.mju_subQuat(self._rotation_error, self.target_quat, self._hand_quat)
        mujoco.mju_rotVecQuat(self._error_rot, self._rotation_error, self._hand_quat)
        if cfg.orientation_gain != 1.0:
            mujoco.mju_scl(self._error_rot, self._error_rot, cfg.orientation_gain)
        # dq0 = g (home - q) and q + dq0 = (1 - g) q + g home, each in one call from g·home (cached).
        gain = cfg.posture_gain
        if gain != self._scaled_home_gain:  # the config is a mutable dataclass
            self._scaled_home, self._scaled_home_gain = gain * self.home_qpos, gain
        scaled_home = self._scaled_home
        mujoco.mju_addScl(posture, scaled_home, q, -gain)
        mujoco.mju_mulMatVec(self._jac_posture, jac, posture)
        mujoco.mju_subFrom(err, self._jac_posture)
        mujoco.mju_mulMatMatT(self._gram, jac, jac)
        mujoco.mju_addTo(self._gram_flat, self._damping_flat)
        mujoco.mju_cholFactor(self._gram, 0.0)
        mujoco.mju_cholSolve(self._solution, self._gram, err)
        target = self._target
        mujoco.mju_mulMatTVec(target, jac, self._solution)
        mujoco.mju_addScl(posture, scaled_home, q, 1.0 - gain)
        mujoco.mju_addTo(target, posture)
        np.minimum(np.maximum(target, self.joint_lower, out=target), self.joint_upper, out=self._arm_ctrl)


class MobileBase:
    """Reads and commands a holonomic base with a lift (`robot.add_mobile_base`), every id cached.

    Commands are normalised to [-1, 1]: (vx, vy) in the base frame (forward, left) scaled by the spec's
    `max_speed` (m/s), the yaw rate by `max_yaw_rate` (rad/s); the lift command moves its height target by up
    to `max_lift_delta` metres per control step."""

    PROPRIO_DIM = 8
    max_lift_delta = 0.02

    def __init__(
        self, model: mujoco.MjModel, data: mujoco.MjData, names: MobileBaseNames, spec: MobileBaseSpec
    ):
        self.model, self.data, self.spec = model, data, spec
        joints = [model.joint(n) for n in names.joints]
        self.qpos_slice = _contiguous([j.qposadr[0] for j in joints], "base joint qpos")
        self.dof_slice = _contiguous([j.dofadr[0] for j in joints], "base joint dofs")
        self.actuator_slice = _contiguous([model.actuator(n).id for n in names.actuators], "base actuators")
        self.lift_range = tuple(spec.lift_range)
        self.body_id = model.body(names.base_body).id

    def reset(self, x: float, y: float, yaw: float, lift: float) -> None:
        """Put the base at world (x, y) metres, `yaw` radians, the lift at `lift` metres, at rest."""
        d = self.data
        d.qpos[self.qpos_slice] = (x, y, yaw, lift)
        d.qvel[self.dof_slice] = 0.0
        d.ctrl[self.actuator_slice] = (0.0, 0.0, 0.0, lift)

    @property
    def pose(self) -> np.ndarray:
        """World (x, y, yaw) of the base, metres and radians (a view)."""
        return self.data.qpos[self.qpos_slice][:3]

    @property
    def lift(self) -> float:
        return float(self.data.qpos[self.qpos_slice.stop - 1])

    def base_to_world(self, vector_xy) -> np.ndarray:
        """Rotate a planar base-frame vector into the world frame."""
        yaw = self.pose[2]
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * vector_xy[0] - s * vector_xy[1], s * vector_xy[0] + c * vector_xy[1]])

    def command(self, velocity_normalised: np.ndarray, lift_normalised: float) -> None:
        """Base velocity (vx, vy forward/left in the base frame, yaw rate) and a lift height step."""
        ctrl = self.data.ctrl[self.actuator_slice]
        ctrl[:2] = self.base_to_world(velocity_normalised[:2]) * self.spec.max_speed
        ctrl[2] = velocity_normalised[2] * self.spec.max_yaw_rate
        ctrl[3] = np.clip(ctrl[3] + lift_normalised * self.max_lift_delta, *self.lift_range)

    def proprio(self, out: np.ndarray) -> np.ndarray:
        """[x, y, yaw, lift (m, rad, world), their velocities] into `out[8]`."""
        out[0:4] = self.data.qpos[self.qpos_slice]
        out[4:8] = self.data.qvel[self.dof_slice]
        return out
