"""The shared-memory protocol of `processes` mode: where a worker writes its step results, how the two
sides order a step (a control block of counters, a doorbell on the pipe) and how infos travel.
"""

from __future__ import annotations

import pickle
import platform
import select
import threading
import time
import traceback

import numpy as np
from gymnasium import spaces

STORES_STAY_ORDERED = platform.machine().lower() in ("x86_64", "amd64", "x86", "i686")
"""x86 never reorders one core's stores as seen by another, so a counter written after the results
publishes them; elsewhere steps go through the pipe (its syscalls are full barriers)."""


def shared_layout(observation_space, action_space, num_envs: int) -> dict | None:
    """Name -> (dtype, shape) of the step results that workers write into shared memory: actions,
    observations (a Box, or a Dict of Boxes), rewards, terminations, truncations. None for other spaces
    and off x86."""
    if not isinstance(action_space, spaces.Box) or not STORES_STAY_ORDERED:
        return None
    layout = {
        # float64 whatever the space says: the envs then see exactly the values the caller passed.
        "actions": (np.dtype(np.float64), (num_envs, *action_space.shape)),
        "rewards": (np.dtype(np.float64), (num_envs,)),
        "terminations": (np.dtype(np.bool_), (num_envs,)),
        "truncations": (np.dtype(np.bool_), (num_envs,)),
    }
    if isinstance(observation_space, spaces.Box):
        layout["obs"] = (observation_space.dtype, (num_envs, *observation_space.shape))
    elif isinstance(observation_space, spaces.Dict) and all(
        isinstance(space, spaces.Box) for space in observation_space.values()
    ):
        for key, space in observation_space.items():
            layout[f"obs.{key}"] = (space.dtype, (num_envs, *space.shape))
    else:
        return None
    return layout


def shared_arrays(buffers: dict, layout: dict) -> dict[str, np.ndarray]:
    return {
        name: np.frombuffer(buffers[name], dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        for name, (dtype, shape) in layout.items()
    }


SPIN_SECONDS = 0.002
"""How long a waiting side keeps polling before it sleeps. A process asleep in a syscall leaves its core
idle, and waking an idle core costs more than a step's worth of work on a virtual machine."""
MIN_SPIN_SECONDS = 0.0001
"""The shortest spin of an idle worker before it sleeps."""
WORKER_SLEEP_SECONDS = 0.01
"""Longest sleep of an idle worker between looks at its doorbell (bounds the cost of a missed wake-up)."""

DOORBELL = b"S"
"""The one-byte pipe message that wakes a sleeping worker (other messages are pickled tuples, never this)."""
GO, DONE, ASLEEP, INFO_BYTES = range(4)
"""Slots of a worker's int64 control block in shared memory: steps ordered by the parent, steps done by the
worker, whether the worker sleeps on its pipe, and the length of its packed infos (-1: on the pipe)."""
INFO_CAPACITY = 1 << 16
"""Bytes of shared memory per worker for its packed step infos; larger infos travel through the pipe."""

fence_lock = threading.Lock()


def memory_fence() -> None:
    """A full memory barrier on x86 (a lock round trip is an atomic read-modify-write): makes the
    'I am asleep' / 'step ordered' flags visible before the other side's flag is read."""
    with fence_lock:
        pass


class PipeWaiter:
    """Looks at one end of a pipe through one `select.poll` object made once (a connection's own `poll(0)`
    builds a selector per call and costs ~8x more), where the platform has one."""

    def __init__(self, remote):
        self.remote = remote
        self._poller = None
        if hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(remote.fileno(), select.POLLIN)

    def ready(self) -> bool:
        return bool(self._poller.poll(0)) if self._poller is not None else self.remote.poll(0)

    def wait(self) -> None:
        """Return once a message is there: poll without sleeping for `SPIN_SECONDS`, then block."""
        deadline = time.perf_counter() + SPIN_SECONDS
        while not self.ready():
            if time.perf_counter() > deadline:
                self.remote.poll(None)
                return


def pack_infos(infos: dict):
    """Infos for transport: plain arrays as raw bytes (pickling ndarrays costs ~10x more), else the dict."""
    if all(isinstance(value, np.ndarray) and value.dtype != object for value in infos.values()):
        return tuple((key, value.dtype.str, value.shape, value.tobytes()) for key, value in infos.items())
    return infos


def unpack_infos(packed) -> dict:
    if isinstance(packed, dict):
        return packed
    return {key: np.frombuffer(raw, dtype=dtype).reshape(shape).copy() for key, dtype, shape, raw in packed}


def step_into_shared(envs, shared: dict, chunk: slice) -> dict:
    """Step `envs` on their actions in shared memory, write the results there and return the infos."""
    obs, rewards, terminations, truncations, infos = envs.step(shared["actions"][chunk])
    if isinstance(obs, dict):
        for key, value in obs.items():
            shared[f"obs.{key}"][chunk] = value
    else:
        shared["obs"][chunk] = obs
    shared["rewards"][chunk] = rewards
    shared["terminations"][chunk] = terminations
    shared["truncations"][chunk] = truncations
    return infos


def serve_shared_step(remote, envs, shared: dict, chunk: slice, control: np.ndarray, info_out: np.ndarray):
    """One step ordered through the control block: results and packed infos into shared memory (errors and
    oversized infos onto the pipe as the usual ("error" | "ok", payload) reply), then DONE, written last."""
    try:
        infos = pack_infos(step_into_shared(envs, shared, chunk))
        packed = pickle.dumps(infos, pickle.HIGHEST_PROTOCOL)
        if len(packed) <= len(info_out):
            info_out[: len(packed)] = np.frombuffer(packed, dtype=np.uint8)
            control[INFO_BYTES] = len(packed)
        else:
            remote.send(("ok", infos))
            control[INFO_BYTES] = -1
    except Exception as exc:  # the env is unchanged after a rejected action: keep serving
        remote.send(("error", (exc, traceback.format_exc())))
        control[INFO_BYTES] = -1
    control[DONE] = control[GO]
