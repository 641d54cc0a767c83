"""The per-agent TeamCarry observation: its named column layout and the gather plan that fills it.

`ObservationLayout` names every column (blocks of fields, some repeated over slots and followed by a
mask); the documented table (`ObservationLayout.table()`, in `TeamCarryEnv`'s docstring) and the plan
(`ObservationPlan`) both come from it, so no column number is written by hand. Every position and
velocity is in the observing agent's own frame: x forward, y left, z up; metres, m/s, rad/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from embodylab.envs.team.scene import HAND_HEIGHT

MAX_OBSTACLES = 4


@dataclass(frozen=True)
class Field:
    name: str
    width: int
    description: str


@dataclass(frozen=True)
class Block:
    """Consecutive fields, repeated over `slots` (1: not repeated); `masked` blocks end with a mask of
    `slots` entries (1 = slot used)."""

    name: str
    fields: tuple[Field, ...]
    slots: int = 1
    masked: bool = False
    description: str = ""

    @property
    def slot_width(self) -> int:
        return sum(f.width for f in self.fields)

    @property
    def width(self) -> int:
        return self.slots * self.slot_width + (self.slots if self.masked else 0)


def _fields(*entries: tuple[str, int, str]) -> tuple[Field, ...]:
    return tuple(Field(*e) for e in entries)


class ObservationLayout:
    """The columns of one agent's observation `[size]` for teams of up to `max_agents`."""

    def __init__(self, max_agents: int, max_obstacles: int = MAX_OBSTACLES):
        self.blocks = (
            Block("self", _fields(
                ("position_room", 2, "world x, y over the room half-size"),
                ("sin_cos_yaw", 2, "sin/cos of its world yaw"),
                ("velocity", 2, "velocity"),
                ("yaw_rate", 1, "yaw rate"),
                ("hand_height", 1, "hand height above the floor"),
                ("hand_velocity", 1, "hand vertical velocity"),
                ("grip", 2, "grip left/right"),
                ("is_robot", 1, "is robot"),
                ("time_left", 1, "time left fraction"),
            )),
            Block("payload", _fields(
                ("position", 3, "position"),
                ("sin_cos_yaw", 2, "sin/cos of its yaw relative to the agent"),
                ("velocity", 3, "velocity"),
                ("yaw_rate", 1, "yaw rate"),
                ("half_extents", 3, "half-extents"),
                ("shape", 3, "shape one-hot table/box/sofa"),
            )),
            Block("goal", _fields(
                ("position", 2, "position relative to the agent"),
                ("sin_cos_yaw", 2, "sin/cos of goal yaw relative to the agent"),
                ("position_in_payload", 2, "goal position in the payload frame"),
                ("sin_cos_yaw_error", 2, "sin/cos of the payload's yaw error"),
            )),
            Block("handles", _fields(
                ("position", 3, "position"),
                ("normal", 2, "outward normal"),
                ("taken", 1, "gripped by anyone"),
            ), slots=max_agents, masked=True, description="max_agents slots"),
            Block("others", _fields(
                ("position", 2, "position"),
                ("sin_cos_yaw", 2, "sin/cos of relative yaw"),
                ("velocity", 2, "velocity"),
                ("gripping", 1, "gripping"),
                ("is_robot", 1, "is robot"),
            ), slots=max_agents - 1, masked=True, description="other agents, in order i+1, i+2, ...: "
               "max_agents - 1 slots"),
            Block("obstacles", _fields(
                ("position", 2, "position"),
                ("radius", 1, "radius"),
            ), slots=max_obstacles, masked=True, description="MAX_OBSTACLES slots"),
        )  # fmt: skip
        self._block = {b.name: b for b in self.blocks}
        self._start, start = {}, 0
        for b in self.blocks:
            self._start[b.name] = start
            start += b.width
        self.size = start

    def block_columns(self, block: str) -> tuple[int, int]:
        """[start, stop) of `block`."""
        if block not in self._block:
            raise ValueError(f"unknown observation block {block!r}; valid blocks: {', '.join(self._block)}")
        return self._start[block], self._start[block] + self._block[block].width

    def columns(self, block: str, field: str) -> np.ndarray:
        """Columns of `field`: int `[width]` in an unrepeated block, `[slots, width]` in a repeated one."""
        start, _ = self.block_columns(block)
        b = self._block[block]
        offset = 0
        for f in b.fields:
            if f.name == field:
                cols = start + offset + b.slot_width * np.arange(b.slots)[:, None] + np.arange(f.width)
                return cols if b.slots > 1 or b.masked else cols[0]
            offset += f.width
        valid = ", ".join(f.name for f in b.fields)
        raise ValueError(f"block {block!r} has no field {field!r}; valid fields: {valid}")

    def mask(self, block: str) -> np.ndarray:
        """Columns `[slots]` of a masked block's mask."""
        b = self._block[block]
        if not b.masked:
            raise ValueError(f"observation block {block!r} has no mask")
        start, stop = self.block_columns(block)
        return np.arange(stop - b.slots, stop)

    def table(self, indent: str = "    ") -> str:
        """The documented table: one line (wrapped at 100 characters) per block, `[start:stop) name: ...`."""
        lines = []
        for b in self.blocks:
            start, stop = self.block_columns(b.name)
            fields = ", ".join(f.description + (f" ({f.width})" if f.width > 1 else "") for f in b.fields)
            if b.slots > 1 or b.masked:
                fields = f"{b.description} x ({fields}), then a mask of {b.slots}"
            text, width = f"{indent}{f'[{start}:{stop})':<10}{b.name}: {fields}", 100
            while len(text) > width:  # wrapped after a comma, so that a field stays on one line
                cut = text.rfind(", ", 0, width - 1) + 1
                lines.append(text[:cut])
                text = indent + " " * 10 + text[cut + 1 :]
            lines.append(text)
        return "\n".join(lines)


class ObservationPlan:
    """The buffers and index arrays that build the observation `[n_agents, layout.size]` of one scene
    topology (`n_handles`, `n_obstacles`) with a fixed, small number of array operations whatever the
    team size.

    Every step copies the world quantities the observation needs into one vector `world` (segments
    below). Gathers from it then give, for all agents at once, the world-frame 2-vectors each agent
    sees (`planar_from`; points then made relative to the agent's position), the angles it sees
    (`angle_from`; all but its own yaw then made relative to it) and the entries it copies unchanged
    (`direct`). One complex multiplication by exp(-i yaw) rotates every 2-vector into its agent's
    frame, and one scatter puts rotated vectors, sines, cosines and copies into the observation,
    whose fixed entries (masks, roles) are written here."""

    def __init__(
        self, layout: ObservationLayout, role_is_robot: np.ndarray, n_handles: int, n_obstacles: int
    ):
        n, h, L = len(role_is_robot), n_handles, layout
        self.layout = layout
        hs, bs = np.arange(h), np.arange(n_obstacles)
        agents = np.arange(n)
        order = (agents[:, None] + np.arange(1, n)[None, :]) % n  # the others of agent i: i+1, i+2, ...

        # The first five segments are copied from the simulation in one concatenate per step.
        sizes = dict(qpos=4 * n, qvel=4 * n, pos=3, vel=6, grip=2 * n, any_grip=n, handles=9 * h)
        sizes |= dict(scalars=6, taken=h, scaled_xy=2 * n, hand_height=n, goal=3, obstacles=2 * n_obstacles)
        at, offset = {}, 0
        for name, size in sizes.items():
            at[name] = offset
            offset += size
        world = np.zeros(offset)
        self.world = world
        view = lambda name, *shape: world[at[name] : at[name] + sizes[name]].reshape(*shape)  # noqa: E731
        self.qpos, self.copied = view("qpos", n, 4), world[: at["any_grip"]]
        self.handle_frame = view("handles", 3 * h, 3)  # centres, bar half-vectors, normals (world)
        self.any_grip = view("any_grip", n)
        # time left, goal in the payload frame (2), sin/cos payload yaw error, payload yaw
        self.scalars, self.taken = view("scalars", 6), view("taken", h)
        self.scaled_xy, self.hand_height = view("scaled_xy", n, 2), view("hand_height", n)
        self.goal, self.obstacles = view("goal", 3), view("obstacles", n_obstacles, 2)
        qpos, qvel, handles, scalars = at["qpos"], at["qvel"], at["handles"], at["scalars"]

        def pairs(first):  # world indices [..., 2] of the 2-vectors starting at `first`
            first = np.asarray(first)
            return np.stack([first, first + 1], axis=-1)

        shared = lambda idx: np.broadcast_to(idx, (n, *np.shape(idx)))  # noqa: E731
        col = L.columns
        points = [  # (world indices [n, k, 2], observation columns [k, 2])
            (shared(pairs([at["pos"], at["goal"]])), np.stack([col("payload", "position")[:2], col("goal", "position")])),
            (shared(pairs(handles + 3 * hs)), col("handles", "position")[:h, :2]),
            (shared(pairs(at["obstacles"] + 2 * bs)), col("obstacles", "position")[:n_obstacles]),
            (pairs(qpos + 4 * order), col("others", "position")[: n - 1]),
        ]  # fmt: skip
        vectors = [
            (shared(pairs([at["vel"]])), col("payload", "velocity")[None, :2]),
            (shared(pairs(handles + 6 * h + 3 * hs)), col("handles", "normal")[:h]),
            (pairs(qvel + 4 * agents)[:, None], col("self", "velocity")[None]),
            (pairs(qvel + 4 * order), col("others", "velocity")[: n - 1]),
        ]
        source = np.concatenate([np.broadcast_to(i, (n, *i.shape[1:])) for i, _ in points + vectors], axis=1)
        self.n_points = sum(i.shape[1] for i, _ in points)
        self.planar_from = source  # [n, entities, 2]; points come first
        planar_columns = np.concatenate([c.reshape(-1) for _, c in points + vectors])
        entities = source.shape[1]

        yaw = qpos + 4 * agents + 2
        self.angle_from = np.c_[yaw, np.full(n, scalars + 5), np.full(n, at["goal"] + 2), yaw[order]]
        angle_columns = np.concatenate(  # [angles, (sin, cos)]
            [
                col("self", "sin_cos_yaw")[None],
                col("payload", "sin_cos_yaw")[None],
                col("goal", "sin_cos_yaw")[None],
                col("others", "sin_cos_yaw")[: n - 1],
            ]
        )

        direct = [  # (world indices [n, k], observation columns [k])
            (at["scaled_xy"] + pairs(2 * agents), col("self", "position_room")),
            (
                np.c_[qvel + 4 * agents + 2, at["hand_height"] + agents, qvel + 4 * agents + 3],
                np.r_[col("self", "yaw_rate"), col("self", "hand_height"), col("self", "hand_velocity")],
            ),
            (at["grip"] + pairs(2 * agents), col("self", "grip")),
            (
                shared(np.r_[scalars, at["pos"] + 2, at["vel"] + 2, at["vel"] + 5]),
                np.r_[
                    col("self", "time_left"),
                    col("payload", "position")[2:],
                    col("payload", "velocity")[2:],
                    col("payload", "yaw_rate"),
                ],
            ),
            (
                shared(scalars + np.arange(1, 5)),
                np.r_[col("goal", "position_in_payload"), col("goal", "sin_cos_yaw_error")],
            ),
            (shared(handles + 3 * hs + 2), col("handles", "position")[:h, 2]),
            (shared(at["taken"] + hs), col("handles", "taken")[:h, 0]),
            (at["any_grip"] + order, col("others", "gripping")[: n - 1, 0]),
        ]
        self.direct = np.concatenate([np.broadcast_to(i, (n, len(c))) for i, c in direct], axis=1)
        direct_columns = np.concatenate([np.asarray(c, int) for _, c in direct])

        # Everything computed per step lands in `values` [n, 2 entities | angles | angles | direct].
        a = self.angle_from.shape[1]
        self.values = np.zeros((n, 2 * entities + 2 * a + self.direct.shape[1]))
        self.local = self.values[:, : 2 * entities].view(np.complex128)  # [n, entities]
        self.sin = self.values[:, 2 * entities : 2 * entities + a]
        self.cos = self.values[:, 2 * entities + a : 2 * entities + 2 * a]
        self.planar = np.empty((n, entities, 2))
        self.angles = np.empty((n, a))
        self.heading = np.empty(n, np.complex128)  # exp(-i yaw): multiplying by it rotates to the agent frame
        self.value_columns = np.r_[planar_columns, angle_columns[:, 0], angle_columns[:, 1], direct_columns]
        if len(np.unique(self.value_columns)) != len(self.value_columns):
            raise RuntimeError("observation layout writes a column twice")

        obs = np.zeros((n, L.size))
        obs[:, col("self", "is_robot")[0]] = role_is_robot
        obs[:, L.mask("handles")[:h]] = 1.0
        obs[:, col("others", "is_robot")[: n - 1, 0]] = role_is_robot[order]
        obs[:, L.mask("others")[: n - 1]] = 1.0
        self.obs = obs
        self.n_obstacles = n_obstacles

    def write_episode(
        self,
        goal: np.ndarray,
        obstacles: np.ndarray,
        half_extents: np.ndarray,
        shape_onehot: np.ndarray,
    ) -> None:
        """The episode's constants: goal (x, y, yaw) `[3]`, obstacles `[MAX_OBSTACLES, 4]` (x, y, radius,
        present), payload half-extents `[3]` and shape one-hot `[3]`."""
        L, k = self.layout, self.n_obstacles
        self.goal[:] = goal
        self.obstacles[:] = obstacles[:k, :2]
        obs = self.obs
        obs[:, L.columns("payload", "half_extents")] = half_extents
        obs[:, L.columns("payload", "shape")] = shape_onehot
        obs[:, L.columns("obstacles", "radius")[:k, 0]] = obstacles[:k, 2]
        obs[:, L.mask("obstacles")] = obstacles[:, 3]

    def observe(
        self,
        agent_qpos: np.ndarray,
        agent_qvel: np.ndarray,
        payload_pos: np.ndarray,
        payload_qvel: np.ndarray,
        payload_rot: np.ndarray,
        grip: np.ndarray,
        handle_distances: np.ndarray,
        room_half: float,
        time_left: float,
    ) -> np.ndarray:
        """The observation float64 `[n_agents, layout.size]` (a buffer the next call overwrites) from the
        agents' (x, y, yaw, lift) positions and velocities `[n, 4]`, the payload's position `[3]`, free
        joint velocity `[6]` and rotation `[3, 3]`, the grips bool `[n, 2]`, each hand's distance to each
        handle `[n, 2, n_handles]` (`handle_frame` already written for this state), the room half-size (m)
        and the fraction of the episode left."""
        np.concatenate((agent_qpos, agent_qvel, payload_pos, payload_qvel, grip), axis=None, out=self.copied)
        np.logical_or(grip[:, 0], grip[:, 1], out=self.any_grip)
        np.divide(agent_qpos[:, :2], room_half, out=self.scaled_xy)
        np.add(agent_qpos[:, 3], HAND_HEIGHT, out=self.hand_height)
        p_yaw = math.atan2(payload_rot[1, 0], payload_rot[0, 0])
        gx, gy, gyaw = self.goal.tolist()
        goal_x, goal_y = gx - payload_pos[0], gy - payload_pos[1]
        c, s = math.cos(p_yaw), math.sin(p_yaw)
        self.scalars[:] = (
            time_left,
            c * goal_x + s * goal_y,
            -s * goal_x + c * goal_y,
            math.sin(gyaw - p_yaw),
            math.cos(gyaw - p_yaw),
            p_yaw,
        )
        taken = self.taken
        taken[:] = 0.0
        if np.logical_or.reduce(grip, axis=None):
            taken[handle_distances.argmin(axis=-1)[grip]] = 1.0

        world = self.world
        angles = world.take(self.angle_from, out=self.angles, mode="clip")
        angles[:, 1:] -= self.qpos[:, 2:3]  # every angle but the agent's own yaw is relative to it
        np.sin(angles, out=self.sin)
        np.cos(angles, out=self.cos)
        heading = self.heading.view(np.float64).reshape(-1, 2)
        heading[:, 0] = self.cos[:, 0]
        np.negative(self.sin[:, 0], out=heading[:, 1])
        planar = world.take(self.planar_from, out=self.planar, mode="clip")
        planar[:, : self.n_points] -= self.qpos[:, None, :2]  # points relative to the agent
        np.multiply(planar.view(np.complex128)[..., 0], self.heading[:, None], out=self.local)
        world.take(self.direct, out=self.values[:, -self.direct.shape[1] :], mode="clip")
        self.obs[:, self.value_columns] = self.values
        return self.obs
