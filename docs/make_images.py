"""Renders the task images of the README: `docs/images/<TaskName>.png` for every lab task, and
`docs/images/lab_tasks.png`, a labelled montage of them (2 rows of 3 for six tasks).

Each image is a 256x256 view with shadows on from a free camera aimed at the task's objects, taken after
the expert has played the task's share of the episode in `SHOWCASE` (the start, or mid-task where that
shows more: a cube lifted, a drawer half open).

    python docs/make_images.py
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import tyro
from PIL import Image, ImageDraw

from embodylab.core.rendering import OffscreenRenderer
from embodylab.envs.registry import LAB_ENVS, short_id
from embodylab.skills.experts import make_expert

SHOWCASE = {  # task: (share of max_episode_steps the expert plays first, azimuth deg, distance m)
    "LabPush": (0.0, 215.0, 1.05),
    "LabClutter": (0.0, 215.0, 1.05),
    "LabPickPlace": (0.25, 215.0, 1.35),
    "LabStack": (0.0, 215.0, 1.05),
    "LabDrawer": (0.35, 245.0, 1.35),
    "LabPegInsert": (0.22, 225.0, 0.95),
}
DEFAULT_SHOWCASE = (0.0, 215.0, 1.35)


@dataclass
class ImagesConfig:
    seed: int = 0
    """reset seed of the captured episode"""
    size: int = 256
    """square image side in pixels"""
    elevation: float = -30.0
    """degrees; negative looks down"""
    columns: int = 3
    """montage columns"""
    out: Path = Path(__file__).parent / "images"


def task_name(env_id: str) -> str:
    """`embodylab/LabReach-v0` -> `LabReach`."""
    return short_id(env_id).rsplit("-v", 1)[0]


def capture(env_id: str, config: ImagesConfig) -> np.ndarray:
    """uint8 [size, size, 3]: the scene after the expert played its showcase share of an episode."""
    fraction, azimuth, distance = SHOWCASE.get(task_name(env_id), DEFAULT_SHOWCASE)
    env = gym.make(env_id)
    expert = make_expert(env)
    env.reset(seed=config.seed)
    expert.reset()
    for _ in range(round(fraction * env.spec.max_episode_steps)):
        env.step(expert.act())
    task = env.unwrapped
    # Aim at the task's objects and its goal marker, seen over the robot's shoulder.
    points = [task.data.mocap_pos[0], *task.object_states().features[:, :3]]
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.lookat[:] = np.mean(points, axis=0)
    camera.distance, camera.azimuth, camera.elevation = distance, azimuth, config.elevation
    with OffscreenRenderer(task.model, config.size, config.size, shadows=True) as renderer:
        image = renderer.rgb(task.data, camera)
    env.close()
    return image


def montage(images: dict[str, np.ndarray], columns: int, label_height: int = 22) -> Image.Image:
    """The images in a grid, each titled with its name, on a white background."""
    size = next(iter(images.values())).shape[0]
    rows = math.ceil(len(images) / columns)
    columns = min(columns, len(images))
    sheet = Image.new("RGB", (columns * size, rows * (size + label_height)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, image) in enumerate(images.items()):
        x, y = (i % columns) * size, (i // columns) * (size + label_height)
        draw.text((x + size / 2, y + label_height / 2), name, fill="black", anchor="mm")
        sheet.paste(Image.fromarray(image), (x, y + label_height))
    return sheet


def main(config: ImagesConfig) -> None:
    config.out.mkdir(parents=True, exist_ok=True)
    images = {}
    for env_id in [e.id for e in LAB_ENVS]:
        images[task_name(env_id)] = capture(env_id, config)
        path = config.out / f"{task_name(env_id)}.png"
        Image.fromarray(images[task_name(env_id)]).save(path)
        print(f"wrote {path}")
    path = config.out / "lab_tasks.png"
    montage(images, config.columns).save(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(tyro.cli(ImagesConfig))
