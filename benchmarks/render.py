"""Offscreen rendering throughput: frames/s of rgb, depth and segmentation, shadows off and on.

Renders from every camera of `embodylab/LabPickPlace-v0` (falls back to a small built-in scene while that
env is not available), prints a table and writes benchmarks/results/render.json.

    python benchmarks/render.py --frames 200 --image-size 64
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import tyro
from tqdm import tqdm

from embodylab.core.rendering import OffscreenRenderer, configure_gl_backend

MODES = ("rgb", "depth", "segmentation")


@dataclass
class RenderBenchConfig:
    env_id: str = "embodylab/LabPickPlace-v0"
    """env whose model and cameras are rendered; a built-in scene is used when it cannot be made"""
    image_size: int = 64
    """square image side in pixels"""
    frames: int = 200
    """frames timed per (mode, shadows) pair, spread over the cameras"""
    out: Path = Path(__file__).parent / "results" / "render.json"


def fallback_scene() -> tuple[mujoco.MjModel, mujoco.MjData, list[str]]:
    """A table with three blocks, a shadow-casting light and front/side/wrist cameras."""
    spec = mujoco.MjSpec()
    spec.worldbody.add_light(pos=[0, 0, 2], dir=[0, 0, -1], castshadow=True)
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1])
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, pos=[0, 0, 0.38], size=[0.4, 0.3, 0.02])
    for i, color in enumerate(([1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1])):
        block = spec.worldbody.add_body(pos=[0.15 * (i - 1), 0, 0.42])
        block.add_freejoint()
        block.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.02] * 3, rgba=color)
    spec.worldbody.add_camera(name="front", pos=[0, -1.0, 0.9], xyaxes=[1, 0, 0, 0, 0.6, 0.8], fovy=45)
    spec.worldbody.add_camera(name="side", pos=[1.0, 0, 0.9], xyaxes=[0, 1, 0, -0.6, 0, 0.8], fovy=45)
    spec.worldbody.add_camera(name="wrist", pos=[0, 0, 0.7], xyaxes=[1, 0, 0, 0, 1, 0], fovy=60)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data, ["front", "side", "wrist"]


def load_scene(env_id: str) -> tuple[mujoco.MjModel, mujoco.MjData, list[str], str]:
    try:
        import embodylab  # noqa: F401  (registers the embodylab/* env ids)

        env = gymnasium.make(env_id)
        env.reset(seed=0)
    except (ImportError, gymnasium.error.Error) as err:
        print(f"note: {env_id} is not available ({err}); timing the built-in fallback scene")
        model, data, cameras = fallback_scene()
        return model, data, cameras, "fallback"
    model, data = env.unwrapped.model, env.unwrapped.data
    cameras = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
    return model, data, cameras, env_id


def gl_renderer_name() -> str:
    """The OpenGL renderer string of the current context (e.g. llvmpipe for Mesa software rendering)."""
    try:
        from OpenGL import GL

        return GL.glGetString(GL.GL_RENDERER).decode()
    except Exception as err:  # the string is informative only; never fail the benchmark over it
        return f"unknown ({type(err).__name__})"


def main(config: RenderBenchConfig) -> None:
    backend = configure_gl_backend()
    model, data, cameras, scene = load_scene(config.env_id)
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

    print(f"\n{scene}: {size}x{size}, cameras {cameras}, MUJOCO_GL={backend} ({gl_renderer})")
    print(f"{'mode':<14}{'shadows off':>14}{'shadows on':>14}{'speed-up':>10}  (frames/s)")
    for mode in MODES:
        off, on = fps[mode]["shadows_off"], fps[mode]["shadows_on"]
        print(f"{mode:<14}{off:>14.1f}{on:>14.1f}{off / on:>9.1f}x")

    result = {
        "benchmark": "render",
        "config": {**asdict(config), "out": os.path.relpath(config.out)},
        "scene": scene,
        "cameras": cameras,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "gl_backend": backend,
            "gl_renderer": gl_renderer,
        },
        "mujoco_version": mujoco.__version__,
        "numpy_version": np.__version__,
        "shadows_on_means": "shadows and reflections on",
        "fps": fps,
    }
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written to {config.out}")


if __name__ == "__main__":
    main(tyro.cli(RenderBenchConfig))
