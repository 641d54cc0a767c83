"""Run a peer benchmark script in its own venv and return its JSON result (standard library only).

The peers pin conflicting versions, so each lives in `.bench-venvs/<peer>` (built by `make bench-peers`) and
its script `benchmarks/peers/<peer>.py` runs there as a subprocess, with MUJOCO_GL=egl.

    from run import PEERS, peer_available, run_peer   # with benchmarks/peers on sys.path
    result = run_peer("fetch", steps=2000, seed=0)
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PEERS = ("fetch", "robosuite", "metaworld")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENVS = REPO / ".bench-venvs"
STDERR_TAIL_LINES = 30


class PeerError(RuntimeError):
    """A peer benchmark could not be run or did not print its JSON result."""


def _check_name(name: str) -> None:
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; peers: {', '.join(PEERS)}")


def peer_python(name: str) -> Path:
    _check_name(name)
    return VENVS / name / "bin" / "python"


def peer_available(name: str) -> bool:
    """Whether the peer's venv exists (`make bench-peers` completed for it)."""
    return peer_python(name).is_file() and (VENVS / name / ".installed").is_file()


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_peer(name: str, steps: int, seed: int = 0, timeout_s: float = 600) -> dict:
    """Run `benchmarks/peers/<name>.py --steps STEPS --seed SEED` in the peer's venv; return its JSON object."""
    if not peer_available(name):
        raise PeerError(
            f"peer {name!r} has no venv at {VENVS / name} (or it is incomplete); build the peer venvs with "
            "`make bench-peers`"
        )
    command = [str(peer_python(name)), str(HERE / f"{name}.py"), "--steps", str(steps), "--seed", str(seed)]
    env = {**os.environ, "MUJOCO_GL": "egl"}
    env.pop("PYTHONPATH", None)  # the main venv's paths must not leak into the peer's interpreter
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO)
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr or ""
        raise PeerError(
            f"peer {name!r} timed out after {timeout_s:g} s; stderr tail:\n{_tail(stderr)}"
        ) from err
    if proc.returncode != 0:
        raise PeerError(f"peer {name!r} exited with {proc.returncode}; stderr tail:\n{_tail(proc.stderr)}")
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as err:
        raise PeerError(
            f"peer {name!r} printed no JSON result; stdout: {proc.stdout[-500:]!r}; stderr tail:\n"
            f"{_tail(proc.stderr)}"
        ) from err
    if not isinstance(result, dict):
        raise PeerError(f"peer {name!r} printed {type(result).__name__}, not a JSON object")
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="run the peer benchmarks and print their JSON results")
    parser.add_argument("peers", nargs="*", default=list(PEERS), help=f"any of {', '.join(PEERS)}")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps({peer: run_peer(peer, args.steps, args.seed) for peer in args.peers}, indent=2))
