"""Offscreen rendering throughput: frames/s of rgb, depth and segmentation, shadows off and on.

Renders from every camera of `embodylab/LabPickPlace-v0`, prints a table and writes
benchmarks/results/render.json.

    python benchmarks/render.py --frames 200 --image-size 64
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium
import mujoco
import tyro
from common import machine_info, write_json
from tqdm import tqdm

import embodylab  # noqa: F401  (registers the embodylab/* env ids)
from embodylab.core.rendering import OffscreenRenderer, configure_gl_backend

MODES = ("rgb", "depth", "segmentation")


@dataclass
class RenderBenchConfig:
    env_id: str = "embodylab/LabPickPlace-v0"
    """env whose model and cameras are rendered"""
    image_size: int = 64
    """square image side in pixels"""
    frames: int = 200
    """frames timed per (mode, shadows) pair, spread over the cameras"""
    out: Path = Path(__file__).parent / "results" / "render.json"


def load_scene(env_id: str) -> tuple[mujoco.MjModel, mujoco.MjData, list[str]]:
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    model, data = env.unwrapped.model, env.unwrapped.data
    cameras = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
    return model, data, cameras


def gl_renderer_name() -> str:
    """The OpenGL renderer string of the current context (e.g. llvmpipe for Mesa software rendering)."""
    try:
        from OpenGL import GL

        return GL.glGetString(GL.GL_RENDERER).decode()
    except Exception as err:  # the string is informative only; never fail the benchmark over it
        return f"unknown ({type(err).__name__})"


def main(config: RenderBenchConfig) -> None:
    backend = configure_gl_backend()
    model, data, cameras = load_scene(config.env_id)
    size = config.image_size
    fps: dict[str, dict[str, float]] = {mode: {} for mode in MODES}
    gl_renderer = "unknown"
    with tqdm(total=2 * len(MODES) * config.frames, desc="rendering", unit="frame") as progress:
        for shadows in (False, True):
            setting = "shadows_on" if shadows else "shadows_off"
            with OffscreenRenderer(model, size, size, shadows=shadows, reflections=shadows) as renderer:
                gl_renderer = gl_renderer_name()
                render = {"rgb": renderer.rgb, "depth": renderer.depth, "segmentation": renderer.geom_ids}
                for mode in MODES:
                    render[mode](data, cameras[0])  # warm-up: first frame compiles shaders
                    start = time.perf_counter()
                    for i in range(config.frames):
                        render[mode](data, cameras[i % len(cameras)])
                        progress.update()
                    fps[mode][setting] = config.frames / (time.perf_counter() - start)

    print(f"\n{config.env_id}: {size}x{size}, cameras {cameras}, MUJOCO_GL={backend} ({gl_renderer})")
    print(f"{'mode':<14}{'shadows off':>14}{'shadows on':>14}{'speed-up':>10}  (frames/s)")
    for mode in MODES:
        off, on = fps[mode]["shadows_off"], fps[mode]["shadows_on"]
        print(f"{mode:<14}{off:>14.1f}{on:>14.1f}{off / on:>9.1f}x")

    result = {
        "benchmark": "render",
        "config": {**asdict(config), "out": os.path.relpath(config.out)},
        "cameras": cameras,
        "machine": {**machine_info(), "gl_backend": backend, "gl_renderer": gl_renderer},
        "shadows_on_means": "shadows and reflections on",
        "fps": fps,
    }
    write_json(config.out, result)


if __name__ == "__main__":
    main(tyro.cli(RenderBenchConfig))
