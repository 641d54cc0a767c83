"""Paths for a disc-shaped team among round obstacles in a square room: grid A* plus shortcutting.

The payload and its carriers fit in a disc of radius `clearance` around the payload centre whatever
the payload's yaw, so planning the centre's path with every obstacle grown by `clearance` keeps the
whole team clear while it turns. Units are metres, world frame.
"""

from __future__ import annotations

import functools
import heapq

import numpy as np

GRID_RESOLUTION = 0.1
Circles = list[tuple[tuple[float, float], float]]


def _segment_clear(
    a: np.ndarray, b: np.ndarray, obstacles: Circles, clearance: float, room_half: float
) -> bool:
    limit = room_half - clearance
    if np.any(np.abs(a) > limit + 1e-9) or np.any(np.abs(b) > limit + 1e-9):
        return False
    ab = b - a
    length2 = float(ab @ ab)
    for centre, radius in obstacles:
        c = np.asarray(centre)
        t = 0.0 if length2 == 0 else float(np.clip((c - a) @ ab / length2, 0.0, 1.0))
        if np.linalg.norm(a + t * ab - c) < radius + clearance:
            return False
    return True


@functools.lru_cache(maxsize=8)
def _grid_coords(room_half: float, resolution: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = int(np.ceil(2 * room_half / resolution)) + 1
    coords = np.linspace(-room_half, room_half, n)
    xs, ys = np.meshgrid(coords, coords, indexing="ij")
    return coords, xs, ys


def _free_grid(
    obstacles: Circles, clearance: float, room_half: float, resolution: float
) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates [n] and the cells [n, n] (x, y) where the team's centre may be: inside the walls
    by `clearance` and off every obstacle by `clearance` plus one cell."""
    coords, xs, ys = _grid_coords(room_half, resolution)
    inside = np.abs(coords) <= room_half - clearance
    free = inside[:, None] & inside[None, :]
    for centre, radius in obstacles:
        reach = radius + clearance + resolution
        # Only cells within `reach` of the centre along both axes can be closer than `reach` to it.
        i = slice(*np.searchsorted(coords, [centre[0] - reach, centre[0] + reach], side="right"))
        j = slice(*np.searchsorted(coords, [centre[1] - reach, centre[1] + reach], side="right"))
        free[i, j] &= np.hypot(xs[i, j] - centre[0], ys[i, j] - centre[1]) >= reach
    return coords, free


def _cell(p, room_half: float, resolution: float, n: int) -> tuple[int, int]:
    return tuple(int(v) for v in np.clip(np.rint((p + room_half) / resolution), 0, n - 1))


def _run_labels(free: np.ndarray) -> np.ndarray:
    """Ids [n, n] of the runs of free cells along axis 1 (1, 2, ...; 0 on blocked cells)."""
    starts = free.copy()
    starts[:, 1:] &= ~free[:, :-1]
    return np.cumsum(starts.ravel()).reshape(free.shape) * free


def path_exists(
    start, goal, obstacles: Circles, clearance: float, room_half: float, resolution: float = GRID_RESOLUTION
) -> bool:
    """Whether `plan_path` with the same arguments finds a path, without searching for it: the goal cell
    is in the start cell's 8-connected component of free cells (or the straight segment is clear).
    The component grows by whole runs of free cells along rows and columns, then by one cell in every
    direction (which adds the diagonal steps), until it stops growing."""
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    if _segment_clear(start, goal, obstacles, clearance, room_half):
        return True
    coords, free = _free_grid(obstacles, clearance, room_half, resolution)
    n = len(coords)
    s, g = _cell(start, room_half, resolution, n), _cell(goal, room_half, resolution, n)
    if not (free[s] and free[g]):
        return False
    rows, columns = _run_labels(free), _run_labels(free.T).T
    reached = np.zeros_like(free)
    reached[s] = True
    count = 1
    while True:
        for labels in (rows, columns):
            runs = np.zeros(labels.max() + 1, bool)
            runs[labels[reached]] = True
            runs[0] = False
            reached = runs[labels]
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        spread = grown.copy()
        spread[:, 1:] |= grown[:, :-1]
        spread[:, :-1] |= grown[:, 1:]
        reached = spread & free
        if reached[g]:
            return True
        new_count = int(reached.sum())
        if new_count == count:
            return False
        count = new_count


def plan_path(
    start, goal, obstacles: Circles, clearance: float, room_half: float, resolution: float = GRID_RESOLUTION
) -> list[np.ndarray] | None:
    """Waypoints [2] from `start` to `goal` (both included) whose straight segments keep a disc of radius
    `clearance` off the walls (|x|, |y| <= `room_half`) and the `(centre, radius)` obstacles; None when the
    grid search finds no path."""
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    if _segment_clear(start, goal, obstacles, clearance, room_half):
        return [start, goal]
    coords, free = _free_grid(obstacles, clearance, room_half, resolution)
    n = len(coords)
    s, g = _cell(start, room_half, resolution, n), _cell(goal, room_half, resolution, n)
    if not (free[s] and free[g]):
        return None
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]
    cost = {s: 0.0}
    parent = {s: s}
    frontier = [(0.0, s)]
    while frontier:
        _, current = heapq.heappop(frontier)
        if current == g:
            break
        for dx, dy in steps:
            nxt = (current[0] + dx, current[1] + dy)
            if not (0 <= nxt[0] < n and 0 <= nxt[1] < n and free[nxt]):
                continue
            new_cost = cost[current] + float(np.hypot(dx, dy))
            if new_cost < cost.get(nxt, np.inf):
                cost[nxt], parent[nxt] = new_cost, current
                heapq.heappush(frontier, (new_cost + float(np.hypot(g[0] - nxt[0], g[1] - nxt[1])), nxt))
    if g not in parent:
        return None
    cells = [g]
    while cells[-1] != s:
        cells.append(parent[cells[-1]])
    points = [start] + [coords[list(c)] for c in reversed(cells[1:-1])] + [goal]
    # Shortcut: from each kept waypoint jump to the farthest later one in straight line of sight.
    path, i = [start], 0
    while i < len(points) - 1:
        j = len(points) - 1
        while j > i + 1 and not _segment_clear(points[i], points[j], obstacles, clearance, room_half):
            j -= 1
        path.append(points[j])
        i = j
    return path
