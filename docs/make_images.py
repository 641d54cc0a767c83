"""Renders the task images of the README: `docs/images/<TaskName>.png` for every lab task, and
`docs/images/lab_tasks.png`, a labelled montage of them (2 rows of 3 for six tasks).

Each image is a 256x256 view from the task's `front` camera with shadows on, taken after the expert has
played a fraction of the episode so that objects are mid-task (a cube lifted, a drawer half open).
Tasks whose module does not exist yet are skipped with a note.

    python docs/make_images.py --fraction 0.3
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import tyro
from PIL import Image, ImageDraw

from embodylab.cli import available_env_ids, short_id
from embodylab.core.rendering import OffscreenRenderer
from embodylab.skills.experts import make_expert


@dataclass
class ImagesConfig:
    fraction: float = 0.3
    """part of the episode (of max_episode_steps) the expert plays before the capture"""
    seed: int = 0
    """reset seed of the captured episode"""
    size: int = 256
    """square image side in pixels"""
    camera: str = "front"
    """camera every task is shown from"""
    columns: int = 3
    """montage columns"""
    out: Path = Path(__file__).parent / "images"


def task_name(env_id: str) -> str:
    """`embodylab/LabReach-v0` -> `LabReach`."""
    return short_id(env_id).rsplit("-v", 1)[0]


def capture(env_id: str, config: ImagesConfig) -> np.ndarray:
    """uint8 [size, size, 3]: the scene after the expert played `fraction` of an episode."""
    env = gym.make(env_id)
    expert = make_expert(env)
    env.reset(seed=config.seed)
    expert.reset()
    for _ in range(round(config.fraction * env.spec.max_episode_steps)):
        env.step(expert.act())
    task = env.unwrapped
    with OffscreenRenderer(task.model, config.size, config.size, shadows=True) as renderer:
        image = renderer.rgb(task.data, config.camera)
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
    ids, skipped = available_env_ids()
    for env_id, reason in skipped.items():
        print(f"skipping {env_id}: {reason}")
    config.out.mkdir(parents=True, exist_ok=True)
    images = {}
    for env_id in ids:
        images[task_name(env_id)] = capture(env_id, config)
        path = config.out / f"{task_name(env_id)}.png"
        Image.fromarray(images[task_name(env_id)]).save(path)
        print(f"wrote {path}")
    path = config.out / "lab_tasks.png"
    montage(images, config.columns).save(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(tyro.cli(ImagesConfig))
