"""TeamHOI-style metrics of a TeamCarry episode, accumulated control step by control step."""

from __future__ import annotations

import math

import numpy as np

LIFTED_CLEARANCE = 0.02  # m: the payload counts as lifted when its lowest corner is this high


class CarryMetrics:
    """`final_distance` (m) and `yaw_error_deg` of the payload to the goal pose, `cooperation_time`
    (fraction of control steps from the first lift on in which every agent grips with at least one
    hand), `payload_jerk` (mean magnitude of the payload's jerk from the first lift on, m/s^3, finite
    differences at the control rate), `lifted` and `max_lift_height` (m)."""

    def __init__(self, control_dt: float):
        self.control_dt = control_dt
        self.reset()

    def reset(self) -> None:
        self.lift_step: int | None = None
        """the control step at which the payload was first lifted, None before."""
        self.max_lift = 0.0
        self._steps_lifted = 0
        self._steps_all_gripping = 0
        self._jerk_sum = 0.0
        self._jerk_count = 0
        self._velocity_history: list[tuple[float, float, float]] = []

    @property
    def lifted(self) -> bool:
        return self.lift_step is not None

    def update(self, step: int, clearance: float, grip_on: np.ndarray, payload_velocity: np.ndarray) -> None:
        """Adds control step `step`: the payload's lowest corner `clearance` (m) above the floor, the grips
        bool `[n_agents, 2]` and the payload's linear velocity `[3]` (m/s, world frame)."""
        self.max_lift = max(self.max_lift, clearance)
        if self.lift_step is None and clearance > LIFTED_CLEARANCE:
            self.lift_step = step
        if self.lift_step is None:
            return
        self._steps_lifted += 1
        self._steps_all_gripping += bool((grip_on[:, 0] | grip_on[:, 1]).all())
        history = self._velocity_history
        history.append(tuple(payload_velocity.tolist()))
        if len(history) > 3:
            del history[0]
        if len(history) == 3:
            jerk = [c - 2 * b + a for a, b, c in zip(*history, strict=True)]
            self._jerk_sum += math.sqrt(sum(j * j for j in jerk)) / self.control_dt**2
            self._jerk_count += 1

    def as_dict(self, distance: float, yaw_error: float) -> dict[str, float | bool]:
        """The metrics with the payload `distance` (m) and `yaw_error` (rad) from the goal pose."""
        return {
            "final_distance": distance,
            "yaw_error_deg": math.degrees(yaw_error),
            "cooperation_time": self._steps_all_gripping / self._steps_lifted if self._steps_lifted else 0.0,
            "payload_jerk": self._jerk_sum / self._jerk_count if self._jerk_count else 0.0,
            "lifted": self.lifted,
            "max_lift_height": self.max_lift,
        }
