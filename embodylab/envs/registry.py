"""Env ids of embodylab, registered with Gymnasium on `import embodylab` (lazily: no task is imported)."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

NAMESPACE = "embodylab"


@dataclass(frozen=True)
class EnvEntry:
    id: str
    entry_point: str
    max_episode_steps: int
    description: str


LAB_ENVS = (
    EnvEntry(
        "embodylab/LabReach-v0",
        "embodylab.envs.lab.reach:LabReachEnv",
        50,
        "Move the gripper to a goal point above the table.",
    ),
    EnvEntry(
        "embodylab/LabPush-v0",
        "embodylab.envs.lab.push:LabPushEnv",
        100,
        "Push a cube across the table to a goal on the table.",
    ),
    EnvEntry(
        "embodylab/LabPickPlace-v0",
        "embodylab.envs.lab.pick_place:LabPickPlaceEnv",
        100,
        "Pick a cube up and hold it at a goal, on the table or in the air.",
    ),
    EnvEntry(
        "embodylab/LabStack-v0",
        "embodylab.envs.lab.stack:LabStackEnv",
        150,
        "Stack the red cube on top of the blue cube.",
    ),
    EnvEntry(
        "embodylab/LabDrawer-v0",
        "embodylab.envs.lab.drawer:LabDrawerEnv",
        100,
        "Pull an articulated drawer open to a target opening.",
    ),
    EnvEntry(
        "embodylab/LabPegInsert-v0",
        "embodylab.envs.lab.peg_insert:LabPegInsertEnv",
        150,
        "Insert a tube into a rack hole with 4 mm clearance.",
    ),
    EnvEntry(
        "embodylab/LabClutter-v0",
        "embodylab.envs.lab.clutter:LabClutterEnv",
        100,
        "Push the blue cube to a goal among 0-7 red distractor cubes.",
    ),
)
HOUSEHOLD_ENVS = (
    EnvEntry(
        "embodylab/HouseholdPickPlace-v0",
        "embodylab.envs.household.pick_place:HouseholdPickPlaceEnv",
        2500,
        "A mobile Panda moves an object from one piece of furniture onto another in a generated apartment.",
    ),
    EnvEntry(
        "embodylab/HouseholdStow-v0",
        "embodylab.envs.household.stow:HouseholdStowEnv",
        3500,
        "A mobile Panda opens a drawer, puts an object inside and closes it.",
    ),
    EnvEntry(
        "embodylab/HouseholdTidy-v0",
        "embodylab.envs.household.tidy:HouseholdTidyEnv",
        6000,
        "A mobile Panda puts misplaced objects where their category belongs.",
    ),
)
ALL_ENVS: tuple[EnvEntry, ...] = LAB_ENVS + HOUSEHOLD_ENVS
TEAM_ENV_IDS = ("TeamCarry-v0",)
"""the PettingZoo team envs, made by `embodylab.envs.team.make(id, n_agents=N)` (not registered with
Gymnasium, which has no multi-agent registry)"""
TEAM_ID_ALIASES = ("team", "TeamCarry", *TEAM_ENV_IDS, *(f"{NAMESPACE}/{i}" for i in TEAM_ENV_IDS))


def register_all() -> None:
    for entry in ALL_ENVS:
        if entry.id not in gym.registry:
            gym.register(
                id=entry.id, entry_point=entry.entry_point, max_episode_steps=entry.max_episode_steps
            )


def env_ids() -> list[str]:
    return [entry.id for entry in ALL_ENVS]


def entry(env_id: str) -> EnvEntry:
    """The registry entry of `env_id` (the `embodylab/` namespace may be omitted)."""
    full = env_id if "/" in env_id else f"{NAMESPACE}/{env_id}"
    for e in ALL_ENVS:
        if e.id == full:
            return e
    raise ValueError(f"unknown env id {env_id!r}; valid ids: {', '.join(env_ids())}")


def short_id(env_id: str) -> str:
    """`env_id` without the `embodylab/` namespace: `embodylab/LabReach-v0` -> `LabReach-v0`."""
    return env_id.removeprefix(f"{NAMESPACE}/")


def resolve_env_id(env_id: str) -> str:
    """The full registered id of `env_id`; the `embodylab/` namespace and the `-vN` version may be omitted
    (the latest version is taken).

    Raises:
        ValueError: no registered id matches; the message names every valid id."""
    try:
        return entry(env_id).id
    except ValueError:
        versions = [e.id for e in ALL_ENVS if short_id(e.id).rsplit("-v", 1)[0] == short_id(env_id)]
        if versions:
            return max(versions, key=lambda i: int(i.rsplit("-v", 1)[1]))
        raise


def description_of(env_class: type) -> str:
    """The registered description of the task class `env_class` (or of the task it is a variant of, e.g.
    its goal-conditioned class); "" for a class no id is registered for."""
    for cls in env_class.__mro__:
        for e in ALL_ENVS:
            if e.entry_point == f"{cls.__module__}:{cls.__name__}":
                return e.description
    return ""


def is_team_id(env_id: str) -> bool:
    """True for the names of the team env (`team`, `TeamCarry`, `TeamCarry-v0`, with or without namespace)."""
    return env_id in TEAM_ID_ALIASES


def make(env_id: str, **kwargs) -> gym.Env:
    """`gymnasium.make` that names every valid id when `env_id` is unknown."""
    return gym.make(entry(env_id).id, **kwargs)
