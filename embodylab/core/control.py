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

from embodylab.core.robot import FINGER_TRAVEL, PandaNames

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


def orientation_error(target_xmat: np.ndarray, current_xmat: np.ndarray) -> np.ndarray:
    """Rotation vector (world frame, radians) that turns `current_xmat` into `target_xmat`."""
    target_quat, current_quat, error_quat = np.empty(4), np.empty(4), np.empty(4)
    mujoco.mju_mat2Quat(target_quat, target_xmat.ravel())
    mujoco.mju_mat2Quat(current_quat, current_xmat.ravel())
    mujoco.mju_negQuat(current_quat, current_quat)
    mujoco.mju_mulQuat(error_quat, target_quat, current_quat)
    rotvec = np.empty(3)
    mujoco.mju_quat2Vel(rotvec, error_quat, 1.0)
    return rotvec


class PandaArm:
    """Reads and commands the Panda in a compiled scene with every id cached at construction."""

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
        self.qpos_adr = np.array([j.qposadr[0] for j in joints])
        self.dof_adr = np.array([j.dofadr[0] for j in joints])
        fingers = [model.joint(n) for n in names.fingers]
        self.finger_qpos_adr = np.array([j.qposadr[0] for j in fingers])
        self.finger_dof_adr = np.array([j.dofadr[0] for j in fingers])
        self.actuator_ids = np.array([model.actuator(n).id for n in names.actuators])
        self.gripper_actuator_id = model.actuator(names.gripper_actuator).id
        self.tcp_site_id = model.site(names.tcp_site).id
        self.hand_body_id = model.body(names.hand_body).id
        self.finger_body_ids = np.array([model.body(n).id for n in names.finger_bodies])
        self.joint_lower = model.jnt_range[[j.id for j in joints], 0].copy()
        self.joint_upper = model.jnt_range[[j.id for j in joints], 1].copy()
        self.home_qpos = np.asarray(home_qpos, dtype=float)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._jac = np.zeros((6, 7))
        self._error = np.zeros(6)
        self._eye6 = np.eye(6)
        self._eye7 = np.eye(7)
        self.target_xmat = np.eye(3)

    # ---- reset ------------------------------------------------------------------------------------
    def reset(self, qpos=None, gripper_open: bool = True) -> None:
        """Place the arm at `qpos` (home by default), at rest, with actuator targets matching."""
        q = self.home_qpos if qpos is None else np.asarray(qpos, dtype=float)
        self.data.qpos[self.qpos_adr] = q
        self.data.qvel[self.dof_adr] = 0.0
        width = FINGER_TRAVEL if gripper_open else 0.0
        self.data.qpos[self.finger_qpos_adr] = width
        self.data.qvel[self.finger_dof_adr] = 0.0
        self.data.ctrl[self.actuator_ids] = q
        self.data.ctrl[self.gripper_actuator_id] = width
        mujoco.mj_kinematics(self.model, self.data)
        self.target_xmat = self.data.site_xmat[self.tcp_site_id].reshape(3, 3).copy()

    # ---- state ------------------------------------------------------------------------------------
    @property
    def qpos(self) -> np.ndarray:
        return self.data.qpos[self.qpos_adr]

    @property
    def qvel(self) -> np.ndarray:
        return self.data.qvel[self.dof_adr]

    @property
    def tcp_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.tcp_site_id]

    @property
    def gripper_width(self) -> float:
        """Distance between the finger pads, metres."""
        return float(self.data.qpos[self.finger_qpos_adr].sum())

    def tcp_velocity(self, out: np.ndarray) -> np.ndarray:
        """Linear velocity of the tool centre point, world frame, m/s (written into `out[3]`)."""
        mujoco.mj_jacSite(self.model, self.data, self._jacp, None, self.tcp_site_id)
        np.dot(self._jacp, self.data.qvel, out=out)
        return out

    def proprio(self, out: np.ndarray) -> np.ndarray:
        """[q 7, qdot 7, tcp position 3, tcp velocity 3, gripper width 1] written into `out[21]`."""
        out[0:7] = self.qpos
        out[7:14] = self.qvel
        out[14:17] = self.tcp_pos
        self.tcp_velocity(out[17:20])
        out[20] = self.gripper_width
        return out

    PROPRIO_DIM = 21

    # ---- commands ---------------------------------------------------------------------------------
    def set_gripper(self, command: float) -> None:
        self.data.ctrl[self.gripper_actuator_id] = (command + 1.0) * 0.5 * FINGER_TRAVEL

    def command_joint_delta(self, delta_normalised: np.ndarray) -> None:
        target = self.qpos + delta_normalised * self.config.max_joint_delta
        self.data.ctrl[self.actuator_ids] = np.clip(target, self.joint_lower, self.joint_upper)

    def command_tcp_delta(self, delta_normalised: np.ndarray) -> None:
        """Damped-least-squares IK step towards tcp + delta with the reset orientation held."""
        cfg = self.config
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.tcp_site_id)
        jac = self._jac
        jac[:3] = self._jacp[:, self.dof_adr]
        jac[3:] = self._jacr[:, self.dof_adr]
        err = self._error
        err[:3] = delta_normalised * cfg.max_ee_delta
        err[3:] = cfg.orientation_gain * orientation_error(
            self.target_xmat, self.data.site_xmat[self.tcp_site_id].reshape(3, 3)
        )
        jjt = jac @ jac.T + (cfg.ik_damping**2) * self._eye6
        jac_pinv = jac.T @ np.linalg.solve(jjt, self._eye6)
        q = self.qpos
        dq = jac_pinv @ err
        dq += (self._eye7 - jac_pinv @ jac) @ (cfg.posture_gain * (self.home_qpos - q))
        self.data.ctrl[self.actuator_ids] = np.clip(q + dq, self.joint_lower, self.joint_upper)
