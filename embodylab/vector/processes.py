"""`processes` mode: the envs are split into `num_workers` contiguous chunks (default: one per CPU core);
the calling process steps the first chunk itself and one worker process steps each of the others, Python
included. Actions, observations, rewards, flags and infos pass through shared memory
(`embodylab.vector.shared_memory`); each side spins briefly on a shared counter instead of sleeping,
because waking an idle core costs more than the message itself on a virtual machine.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import time
import traceback
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from embodylab.vector import shared_memory
from embodylab.vector.shared_memory import (
    ASLEEP,
    DONE,
    DOORBELL,
    GO,
    INFO_BYTES,
    MIN_SPIN_SECONDS,
    SPIN_SECONDS,
    WORKER_SLEEP_SECONDS,
    PipeWaiter,
    memory_fence,
    serve_shared_step,
    shared_arrays,
    shared_layout,
    step_into_shared,
    unpack_infos,
)
from embodylab.vector.threads import ThreadedVectorEnv, copy_batch, finite_actions


def _chunk_worker(
    remote,
    parent_remote,
    env_fns,
    autoreset_mode: str,
    chunk: slice,
    buffers,
    layout,
    control_buffer,
    info_buffer,
) -> None:
    """Serve one chunk of envs. Steps are ordered through shared memory (see `DOORBELL`'s neighbours); other
    requests come as pickled ("reset", kwargs) / ("step", actions) / ("close", None) and get pipe replies."""
    parent_remote.close()
    envs = ThreadedVectorEnv(env_fns, num_threads=1, copy=False, autoreset_mode=autoreset_mode)
    shared = shared_arrays(buffers, layout) if layout is not None else None
    control = np.frombuffer(control_buffer, dtype=np.int64)
    info_out = np.frombuffer(info_buffer, dtype=np.uint8)
    waiter = PipeWaiter(remote)
    idle_since = time.perf_counter()
    # Spin about three times the usual pause between steps, at most SPIN_SECONDS, and hardly at all after a
    # pause longer than that: a caller that trains between steps (gradient updates) then finds its cores
    # free instead of shared with a spinning worker.
    spin_seconds, typical_pause = SPIN_SECONDS, 0.0
    try:
        while True:
            if control[GO] != control[DONE]:
                pause = time.perf_counter() - idle_since
                if pause < SPIN_SECONDS:
                    typical_pause = max(pause, 0.95 * typical_pause)  # a slowly forgetting maximum
                    spin_seconds = min(SPIN_SECONDS, max(MIN_SPIN_SECONDS, 3.0 * typical_pause))
                else:  # a pause no spin would have bridged: sleep early next time
                    spin_seconds = MIN_SPIN_SECONDS
                serve_shared_step(remote, envs, shared, chunk, control, info_out)
                idle_since = time.perf_counter()
            elif waiter.ready():
                message = remote.recv_bytes()
                if message == DOORBELL:
                    continue
                command, payload = pickle.loads(message)
                if command == "close":
                    break
                try:
                    result = envs.step(payload) if command == "step" else envs.reset(**payload)
                    remote.send(("ok", result))
                except Exception as exc:  # the env is unchanged after a rejected action: keep serving
                    remote.send(("error", (exc, traceback.format_exc())))
                idle_since = time.perf_counter()
            elif time.perf_counter() - idle_since > spin_seconds:
                control[ASLEEP] = 1
                memory_fence()
                if control[GO] == control[DONE]:
                    remote.poll(WORKER_SLEEP_SECONDS)  # the parent rings when it sees ASLEEP
                control[ASLEEP] = 0
    finally:
        envs.close()
        remote.close()


def _obs_rows(observations, rows: slice):
    """A copy of rows of a batch of observations (an array, or a dict of arrays)."""
    if isinstance(observations, dict):
        return {key: value[rows].copy() for key, value in observations.items()}
    return observations[rows].copy()


def _concatenate_chunks(parts: list):
    """Concatenate chunk observations (arrays, or dicts of arrays) along the env axis."""
    if isinstance(parts[0], dict):
        return {key: _concatenate_chunks([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _merge_chunk_infos(parts: list[dict], sizes: list[int]) -> dict:
    """One vector info dict from per-chunk vector info dicts, with the layout `VectorEnv._add_info` gives:
    `info[key]` holds one entry per env and `info["_" + key]` marks the envs that reported `key`."""
    keys = list(parts[0])
    if all(list(part) == keys for part in parts) and all(
        isinstance(value, np.ndarray) and value.dtype != object for part in parts for value in part.values()
    ):  # the usual step: every chunk reports the same keys as arrays
        return {key: np.concatenate([part[key] for part in parts]) for key in keys}
    total, merged = sum(sizes), {}
    keys = dict.fromkeys(key for part in parts for key in part if not key.startswith("_"))
    offsets = np.cumsum([0, *sizes])
    for key in keys:
        present = [(part[key], offsets[c], sizes[c]) for c, part in enumerate(parts) if key in part]
        first = present[0][0]
        if isinstance(first, dict):
            merged[key] = _merge_chunk_infos([part.get(key, {}) for part in parts], sizes)
        else:
            if first.dtype == object:
                array = np.full(total, None, dtype=object)
            else:
                array = np.zeros((total, *first.shape[1:]), dtype=first.dtype)
            for value, start, size in present:
                array[start : start + size] = value
            merged[key] = array
        mask = np.zeros(total, dtype=np.bool_)
        for c, part in enumerate(parts):
            if f"_{key}" in part:
                mask[offsets[c] : offsets[c] + sizes[c]] = part[f"_{key}"]
        merged[f"_{key}"] = mask
    return merged


class ProcessVectorEnv(VectorEnv):
    """`num_envs` envs split into `num_workers` contiguous chunks: the calling process steps the first chunk
    itself and one worker process steps each of the others, all at once.

    Python (control, observations, rewards) runs in parallel too, not only the physics. Actions and step
    results of Box (or Dict-of-Box) spaces travel through shared memory, so a step costs one short message
    per worker; while a step is due, both sides poll their pipe for a moment instead of sleeping, because
    waking an idle core costs more than the message itself on a virtual machine.

    Env i gets seed `seed + i` and the same auto-reset semantics as in `SyncVectorEnv`, so trajectories
    equal `num_envs` separately seeded envs. Workers start as fresh interpreters (`forkserver`, else
    `spawn`; `context` overrides), so a script that makes one needs the `if __name__ == "__main__":` guard,
    as with Gymnasium's `AsyncVectorEnv` under spawn. Non-finite actions are refused before any env moves;
    other errors raised in a worker are re-raised here with the worker's traceback attached, and the worker
    keeps serving."""

    def __init__(
        self,
        env_fns,
        num_workers: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        context: str | None = None,
    ):
        self.num_envs = len(env_fns)
        num_workers = max(1, min(num_workers or os.cpu_count() or 1, self.num_envs))
        bounds = np.linspace(0, self.num_envs, num_workers + 1).round().astype(int)
        self._chunks = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self._sizes = [c.stop - c.start for c in self._chunks]
        self.autoreset_mode = AutoresetMode(autoreset_mode)

        # The first chunk lives here: this process would otherwise sit idle while the workers step.
        self._local = ThreadedVectorEnv(
            env_fns[self._chunks[0]], num_threads=1, copy=False, autoreset_mode=self.autoreset_mode
        )
        self.single_observation_space = self._local.single_observation_space
        self.single_action_space = self._local.single_action_space
        self.metadata = {**self._local.metadata, "autoreset_mode": self.autoreset_mode}
        self.spec, self.render_mode = self._local.spec, self._local.render_mode
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        # Forked workers run ~20% slower here (copy-on-write faults on the parent's Python objects) and fork
        # a process that may hold threads; a fresh interpreter per worker avoids both.
        if context is None:
            context = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(context)
        # Step results travel through shared memory (one copy out per step), not through pickles.
        layout = shared_layout(self.single_observation_space, self.single_action_space, self.num_envs)
        buffers = None
        self._shared = None
        if layout is not None:
            buffers = {
                name: ctx.RawArray("b", max(1, dtype.itemsize * int(np.prod(shape))))
                for name, (dtype, shape) in layout.items()
            }
            self._shared = shared_arrays(buffers, layout)
        self._remotes, self._processes = [], []
        self._controls, self._info_buffers = [], []
        for chunk in self._chunks[1:]:
            remote, worker_remote = ctx.Pipe()
            control_buffer = ctx.RawArray("q", 4)
            info_buffer = ctx.RawArray("B", shared_memory.INFO_CAPACITY)
            self._controls.append(np.frombuffer(control_buffer, dtype=np.int64))
            self._info_buffers.append(np.frombuffer(info_buffer, dtype=np.uint8))
            process = ctx.Process(
                target=_chunk_worker,
                args=(
                    worker_remote,
                    remote,
                    env_fns[chunk],
                    self.autoreset_mode.value,
                    chunk,
                    buffers,
                    layout,
                    control_buffer,
                    info_buffer,
                ),
                daemon=True,
                name=f"embodylab-envs-{chunk.start}-{chunk.stop - 1}",
            )
            process.start()
            worker_remote.close()
            self._remotes.append(remote)
            self._processes.append(process)
        self._waiters = {remote: PipeWaiter(remote) for remote in self._remotes}
        self._closed_workers = False
        self._chunk_obs: list = [None] * len(self._chunks)

    def _receive(self, remote) -> tuple[str, Any]:
        """The next ("ok" | "error", payload) reply of a worker; a dead worker raises RuntimeError."""
        try:
            self._waiters[remote].wait()
            return remote.recv()
        except (EOFError, ConnectionError) as exc:
            error = self._worker_died(self._remotes.index(remote))
            error.add_note(
                'A script that makes a processes-mode vector env needs the `if __name__ == "__main__":` '
                "guard; the worker's own error, if any, is printed above."
            )
            raise error from exc

    @staticmethod
    def _raise_errors(local_error: BaseException | None, worker_error: tuple | None) -> None:
        """Raise this process's error, else the first worker's with its traceback attached."""
        if local_error is not None:
            raise local_error
        if worker_error is not None:
            exc, worker_traceback = worker_error
            exc.add_note(f"raised in an embodylab vector worker process:\n{worker_traceback}")
            raise exc

    def _gather(self, remotes: list, local_error: BaseException | None = None) -> list:
        results, error = [], None
        for remote in remotes:  # receive from every worker before raising, so no reply is left queued
            status, payload = self._receive(remote)
            if status == "error":
                error = error or payload
            results.append(payload)
        self._raise_errors(local_error, error)
        return results

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        options = dict(options or {})
        reset_mask = options.pop("reset_mask", None)
        requests = {}
        for c, chunk in enumerate(self._chunks):
            chunk_options = dict(options)
            if reset_mask is not None:
                if not np.any(reset_mask[chunk]):
                    continue  # SyncVectorEnv refuses an all-False mask; this chunk keeps its state
                chunk_options["reset_mask"] = np.asarray(reset_mask[chunk])
            requests[c] = {"seed": seeds[chunk], "options": chunk_options or None}
        asked = [c for c in requests if c > 0]
        for c in asked:
            self._remotes[c - 1].send(("reset", requests[c]))
        replies, local_error = {}, None
        if 0 in requests:
            try:
                replies[0] = self._local.reset(**requests[0])
            except Exception as exc:  # the workers' replies are still collected first
                local_error = exc
        replies.update(
            zip(asked, self._gather([self._remotes[c - 1] for c in asked], local_error), strict=True)
        )
        for c, (obs, _) in replies.items():
            self._chunk_obs[c] = copy_batch(obs)
        infos = [replies[c][1] if c in replies else {} for c in range(len(self._chunks))]
        return _concatenate_chunks(self._chunk_obs), _merge_chunk_infos(infos, self._sizes)

    def step(self, actions):
        actions = finite_actions(actions)
        if self._shared is not None:
            return self._step_shared(actions)
        for chunk, remote in zip(self._chunks[1:], self._remotes, strict=True):
            remote.send(("step", actions[chunk]))
        local, local_error = None, None
        try:
            local = self._local.step(actions[self._chunks[0]])
        except Exception as exc:
            local_error = exc
        results = [local, *self._gather(self._remotes, local_error)]
        self._chunk_obs = [copy_batch(r[0]) for r in results]
        observations = _concatenate_chunks(self._chunk_obs)
        rewards, terminations, truncations = (np.concatenate([r[k] for r in results]) for k in (1, 2, 3))
        return (
            observations,
            rewards,
            terminations,
            truncations,
            _merge_chunk_infos([r[4] for r in results], self._sizes),
        )

    def _step_shared(self, actions: np.ndarray):
        shared = self._shared
        if actions.shape != shared["actions"].shape:
            raise ValueError(f"actions have shape {actions.shape}; expected {shared['actions'].shape}")
        np.copyto(shared["actions"], actions, casting="unsafe")
        for control, remote in zip(self._controls, self._remotes, strict=True):
            control[GO] += 1
            memory_fence()
            if control[ASLEEP]:
                try:
                    remote.send_bytes(DOORBELL)
                except OSError as exc:  # BrokenPipeError: the worker is gone
                    raise self._worker_died(self._remotes.index(remote)) from exc
        local_infos, local_error = {}, None
        try:
            local_infos = step_into_shared(self._local, shared, self._chunks[0])
        except Exception as exc:
            local_error = exc
        replies, error = [], None
        for w, control in enumerate(self._controls):  # every worker's reply first, so none is left queued
            self._wait_done(w)
            size = int(control[INFO_BYTES])
            if size >= 0:
                replies.append(pickle.loads(self._info_buffers[w][:size].tobytes()))
                continue
            status, payload = self._receive(self._remotes[w])  # an error, or infos too large for the buffer
            if status == "error":
                error = error or payload
            replies.append(payload if status == "ok" else {})
        self._raise_errors(local_error, error)
        infos = [local_infos, *map(unpack_infos, replies)]
        if "obs" in shared:
            observations = shared["obs"].copy()
        else:
            observations = {key: shared[f"obs.{key}"].copy() for key in self.single_observation_space}
        # A partial reset() returns these rows for the chunks it does not reset.
        self._chunk_obs = [_obs_rows(observations, chunk) for chunk in self._chunks]
        return (
            observations,
            shared["rewards"].copy(),
            shared["terminations"].copy(),
            shared["truncations"].copy(),
            _merge_chunk_infos(infos, self._sizes),
        )

    def _wait_done(self, w: int) -> None:
        """Wait until worker w has done the step ordered last: spin for `SPIN_SECONDS`, then nap in short
        sleeps, checking now and then that the worker is alive."""
        control = self._controls[w]
        deadline = time.perf_counter() + SPIN_SECONDS
        naps = 0
        while control[DONE] != control[GO]:
            if time.perf_counter() < deadline:
                continue
            time.sleep(0.0001)
            naps += 1
            if naps % 100 == 0 and not self._processes[w].is_alive():
                raise self._worker_died(w)

    def _worker_died(self, w: int) -> RuntimeError:
        process = self._processes[w]
        process.join(timeout=1)
        return RuntimeError(
            f"vector worker process {process.name} died (exit code {process.exitcode}); this vector env "
            "cannot step any more: close it and make a new one"
        )

    def close_extras(self, **kwargs: Any) -> None:
        if self._closed_workers:
            return
        self._closed_workers = True
        for remote in self._remotes:
            with contextlib.suppress(BrokenPipeError, OSError):  # a worker that already died
                remote.send(("close", None))
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
        for remote in self._remotes:
            remote.close()
        self._local.close()
