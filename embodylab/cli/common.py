"""What the subcommands share: the usage error, the env-id argument and the one-line space summary."""

from __future__ import annotations

from typing import Annotated

import gymnasium as gym
import numpy as np
import tyro
from gymnasium import spaces

EnvIdArgument = tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="ID")]]


class UsageError(ValueError):
    """A bad value given on the command line (unknown policy, a combination the command refuses); the
    message names the valid choices. `main` prints it, like the library's `ValueError`s, as one line."""


def describe_space(space: gym.Space) -> str:
    """A one-line summary of a space: `Box(4,) float32 [-1, 1]`, `Dict(rgb: Box(64, 64, 3) uint8 ...)`."""
    if isinstance(space, spaces.Box):
        shape = "(" + ", ".join(map(str, space.shape)) + ("," if len(space.shape) == 1 else "") + ")"
        text = f"Box{shape} {space.dtype}"
        low, high = np.unique(space.low), np.unique(space.high)
        if low.size == 1 and high.size == 1 and np.isfinite(low[0]) and np.isfinite(high[0]):
            text += f" [{low[0]:g}, {high[0]:g}]"
        return text
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {describe_space(v)}" for k, v in space.spaces.items()) + ")"
    return str(space)
