"""The random part of a TeamCarry episode: payload shape, size and mass, handles, room, obstacles, goal.

`sample_layout(config, n_agents, roles, rng)` is a pure function of its arguments (every draw comes from
`rng`), so one seed gives one layout. Frames: the world has z up and the floor at z = 0; the payload
frame has its origin on the floor under the payload's centre, x along its length, y along its depth
(a sofa's back is on the +y side). Units are metres, kilograms, radians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodylab.envs.team.planning import path_exists

PAYLOAD_SHAPES = ("table", "box", "sofa")
ROLES = ("human", "robot")
GRAVITY = 9.81
HAND_REACH = 0.45
"""horizontal distance (m) from an agent's base axis to its hands, along its heading."""
HAND_HALF_SPACING = 0.2
"""lateral distance (m) of each hand from the agent's heading axis."""
HANDLE_OFFSET = 0.035
"""distance (m) of a handle bar's axis outside the payload face it is mounted on."""
HANDLE_HALF_LENGTH = 0.25
AGENT_SPACING = 0.7
"""metres of payload side each agent needs, so that neighbours' bodies do not overlap."""
AGENT_RADIUS = 0.24
TEAM_MARGIN = HAND_REACH + HANDLE_OFFSET + AGENT_RADIUS + 0.25
"""metres from the payload's footprint to the outside of the team that holds it (plus a safety gap)."""


@dataclass(frozen=True)
class RoleParams:
    """Body and strength of one role. `lift_force`: the most the arm lift actuator pushes (N);
    `grip_force_limit`: a hand lets go when its grip constraint carries more than this (N)."""

    lift_force: float
    grip_force_limit: float
    base_force: float = 900.0
    base_torque: float = 400.0
    mass: float = 70.0


ROLE_PARAMS = {
    "human": RoleParams(lift_force=250.0, grip_force_limit=450.0),
    "robot": RoleParams(lift_force=400.0, grip_force_limit=700.0, base_force=1200.0, mass=90.0),
}


@dataclass(frozen=True)
class Handle:
    """A handle bar in the payload frame: centre `pos` [3], outward face normal `normal` [2]."""

    pos: tuple[float, float, float]
    normal: tuple[float, float]

    @property
    def tangent(self) -> tuple[float, float]:
        return (-self.normal[1], self.normal[0])


@dataclass(frozen=True)
class Obstacle:
    """A round obstacle (pillar, planter, round table): centre `pos` [2] (m), `radius` (m), `height` (m)."""

    pos: tuple[float, float]
    radius: float
    height: float


@dataclass(frozen=True)
class TeamLayout:
    """One episode's world. `half_extents` is the payload's bounding box half size (x, y, z) (m);
    `start`/`goal` are payload poses (x, y, yaw) on the floor; `agent_poses` are the base poses
    (x, y, yaw) the agents start from, in agent order."""

    shape: str
    half_extents: tuple[float, float, float]
    mass: float
    handles: tuple[Handle, ...]
    start: tuple[float, float, float]
    goal: tuple[float, float, float]
    obstacles: tuple[Obstacle, ...]
    agent_poses: tuple[tuple[float, float, float], ...]
    roles: tuple[str, ...]
    room_half: float
    rgba: tuple[float, float, float, float] = (0.6, 0.4, 0.25, 1.0)

    @property
    def team_radius(self) -> float:
        return team_radius(self.half_extents)


def team_radius(half_extents) -> float:
    """Radius (m) of the disc around the payload centre that the payload and its carriers stay inside
    whatever the payload's yaw."""
    return float(np.hypot(half_extents[0], half_extents[1]) + TEAM_MARGIN)


def handles_per_side(n_agents: int) -> tuple[int, int, int, int]:
    """How many handles go on the sides +x, +y, -x, -y. An even team has one carrier on each end and the
    rest shared evenly by the long sides; an odd team one on the +x end and the rest on the long sides,
    shifted towards -x (see `place_handles`). Either way the handles' centroid is the payload's centre of
    mass, so carriers with equal arms share the weight evenly."""
    if n_agents == 1:
        return (1, 0, 0, 0)
    if n_agents % 2:
        return (1, (n_agents - 1) // 2, 0, (n_agents - 1) // 2)
    return (1, (n_agents - 2) // 2, 1, (n_agents - 2) // 2)


def handle_height(shape: str, side: int, height: float) -> float:
    """Height (m) of the handle bar on `side` (0: +x, 1: +y, 2: -x, 3: -y) of a payload `height` tall."""
    if shape == "sofa":  # back on +y (handles on its face, at hand height), armrests on the ends, seat front
        return {0: SOFA_ARM_TOP, 1: SOFA_BACK_HANDLE, 2: SOFA_ARM_TOP, 3: SOFA_SEAT_TOP}[side]
    return height - 0.03


SOFA_SEAT_TOP = 0.46
SOFA_ARM_TOP = 0.64
SOFA_BACK_HANDLE = 0.72


def place_handles(shape: str, half_extents, n_agents: int) -> tuple[Handle, ...]:
    """Handles spread evenly along each side (see `handles_per_side`), in the payload frame."""
    hx, hy, hz = half_extents
    handles = []
    normals = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))
    # An odd team has no carrier on the -x end; shifting the long-side handles by this much in x puts
    # the centroid of all handles back on the centre.
    shift = -(hx + HANDLE_OFFSET) / (n_agents - 1) if n_agents % 2 and n_agents > 1 else 0.0
    for side, count in enumerate(handles_per_side(n_agents)):
        nx, ny = normals[side]
        half_side = hy if side % 2 == 0 else hx  # half length of the side the handles run along
        for j in range(count):
            along = -half_side + (j + 0.5) * 2 * half_side / count
            tx, ty = -ny, nx
            x = nx * (hx + HANDLE_OFFSET) + tx * along + (shift if side % 2 else 0.0)
            y = ny * (hy + HANDLE_OFFSET) + ty * along
            handles.append(Handle((x, y, handle_height(shape, side, 2 * hz)), (nx, ny)))
    return tuple(handles)


def stance_pose(handle: Handle) -> tuple[float, float, float]:
    """Base pose (x, y, yaw) in the payload frame from which both hands sit on `handle`."""
    x, y, _ = handle.pos
    nx, ny = handle.normal
    return (x + nx * HAND_REACH, y + ny * HAND_REACH, float(np.arctan2(-ny, -nx)))


def payload_mass_range(k: int) -> tuple[float, float]:
    """Masses (kg) that `k` humans can lift together but `k - 1` cannot: the weight lies between
    (k - 0.75) and (k - 0.3) human lift forces, so k - 1 humans lack at least a quarter of a lifter and
    k humans sharing it evenly keep a 15 % margin each for uneven loads and acceleration."""
    human = ROLE_PARAMS["human"].lift_force
    return ((k - 0.75) * human / GRAVITY, (k - 0.3) * human / GRAVITY)


def _payload_half_extents(shape: str, n_agents: int, rng: np.random.Generator) -> np.ndarray:
    per_side = handles_per_side(n_agents)
    long_needed = max(per_side[1], per_side[3]) * AGENT_SPACING / 2
    if shape == "table":
        half = [rng.uniform(0.6, 0.9), rng.uniform(0.35, 0.5), rng.uniform(0.72, 0.78) / 2]
    elif shape == "box":
        half = [rng.uniform(0.45, 0.7), rng.uniform(0.3, 0.42), rng.uniform(0.6, 0.75) / 2]
    else:
        half = [rng.uniform(0.8, 1.1), rng.uniform(0.4, 0.48), rng.uniform(0.82, 0.88) / 2]
    half[0] = max(half[0], long_needed)
    return np.array(half)


PAYLOAD_COLOURS = {
    "table": ((0.55, 0.36, 0.2, 1.0), (0.45, 0.3, 0.18, 1.0), (0.68, 0.5, 0.3, 1.0)),
    "box": ((0.72, 0.56, 0.36, 1.0), (0.65, 0.5, 0.32, 1.0)),
    "sofa": ((0.2, 0.4, 0.6, 1.0), (0.62, 0.2, 0.2, 1.0), (0.55, 0.55, 0.58, 1.0), (0.45, 0.35, 0.6, 1.0)),
}


def sample_layout(
    n_agents: int,
    roles: tuple[str, ...],
    k: int,
    shapes: tuple[str, ...],
    room_half: float,
    max_obstacles: int,
    rng: np.random.Generator,
) -> TeamLayout:
    """Draws a solvable layout: a payload path from start to goal that keeps the team disc
    (`team_radius`) clear of walls and obstacles exists (`path_exists`)."""
    shape = shapes[int(rng.integers(len(shapes)))]
    half = _payload_half_extents(shape, n_agents, rng)
    lo, hi = payload_mass_range(k)
    mass = float(rng.uniform(lo, hi))
    handles = place_handles(shape, half, n_agents)
    radius = team_radius(half)
    free = room_half - radius - 0.1
    colours = PAYLOAD_COLOURS[shape]
    rgba = colours[int(rng.integers(len(colours)))]
    for _ in range(200):
        start = rng.uniform(-free, free, 2)
        goal = rng.uniform(-free, free, 2)
        if np.linalg.norm(goal - start) < 2.5:
            continue
        obstacles = []
        for _ in range(int(rng.integers(1, max_obstacles + 1))):
            r = float(rng.uniform(0.2, 0.45))
            # between start and goal, off the line, so that the team must route around it
            t = rng.uniform(0.3, 0.7)
            centre = start + t * (goal - start) + rng.normal(0.0, 0.8, 2)
            centre = np.clip(centre, -room_half + r + 0.05, room_half - r - 0.05)
            ends_clear = min(np.linalg.norm(centre - start), np.linalg.norm(centre - goal)) > radius + r + 0.2
            if ends_clear:
                obstacles.append(
                    Obstacle((float(centre[0]), float(centre[1])), r, float(rng.uniform(0.9, 1.2)))
                )
        if not obstacles:
            continue
        if not path_exists(start, goal, [(o.pos, o.radius) for o in obstacles], radius, room_half):
            continue
        start_yaw, goal_yaw = rng.uniform(-np.pi, np.pi, 2)
        agent_poses = _spawn_agents(n_agents, start, half, rng)
        return TeamLayout(
            shape=shape,
            half_extents=tuple(float(h) for h in half),
            mass=mass,
            handles=handles,
            start=(float(start[0]), float(start[1]), float(start_yaw)),
            goal=(float(goal[0]), float(goal[1]), float(goal_yaw)),
            obstacles=tuple(obstacles),
            agent_poses=agent_poses,
            roles=roles,
            room_half=room_half,
            rgba=rgba,
        )
    raise RuntimeError(f"no solvable layout found for {n_agents} agents in a {2 * room_half} m room")


def _spawn_agents(n_agents: int, centre: np.ndarray, half: np.ndarray, rng: np.random.Generator):
    """Agents stand on a ring around the payload in a random order, facing roughly towards it, so that
    who takes which handle is for the team to decide."""
    ring = float(np.hypot(half[0], half[1]) + 0.8)
    offset = rng.uniform(-np.pi, np.pi)
    angles = offset + 2 * np.pi * np.arange(n_agents) / n_agents + rng.uniform(-0.15, 0.15, n_agents)
    angles = angles[rng.permutation(n_agents)]
    poses = []
    for a in angles:
        x, y = centre + ring * np.array([np.cos(a), np.sin(a)])
        poses.append((float(x), float(y), float(a + np.pi + rng.uniform(-0.6, 0.6))))
    return tuple(poses)
