"""Top-down and robot's-eye renders of generated apartments for the README (docs/images/).

MUJOCO_GL=egl python docs/make_household_images.py --seeds 0 1
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro
from PIL import Image

import embodylab
from embodylab.core.rendering import OffscreenRenderer
from embodylab.envs.household.apartment import WALL_HEIGHT, WALL_THICKNESS

MARGIN_PX = 12


@dataclass
class HouseholdImagesConfig:
    seeds: tuple[int, ...] = (0, 1)
    """apartment seeds to render"""
    size: int = 1024
    """pixels: side of the square top-down render (cropped to the apartment) and width of the robot's view"""
    out: Path = Path(__file__).parent / "images"


def top_down(env, size: int) -> np.ndarray:
    """The overhead camera's view, cropped to the apartment's rows."""
    u = env.unwrapped
    with OffscreenRenderer(u.model, size, size) as renderer:
        image = renderer.rgb(u.data, "overhead")
    # Pixels per metre at the wall tops, from the camera's height and vertical field of view.
    camera = u.model.camera("overhead")
    height = float(camera.pos[2]) - WALL_HEIGHT
    per_metre = size / (2.0 * height * np.tan(np.radians(camera.fovy[0]) / 2))
    half_rows = int((u.apartment.size[1] / 2 + WALL_THICKNESS) * per_metre) + MARGIN_PX
    return image[max(size // 2 - half_rows, 0) : size // 2 + half_rows]


def robots_eye(env, size: int) -> np.ndarray:
    """The head camera with the base in the kitchen's middle, facing the furnished north wall."""
    u = env.unwrapped
    kitchen = u.apartment.rooms[0]
    north = [f for f in u.apartment.fixtures if f.room == kitchen.name and f.pos[1] > kitchen.centre[1]]
    yaw = np.pi / 2 if north else -np.pi / 2
    # The lift at its lowest keeps the arm below the head camera's line of sight.
    u.base.reset(kitchen.centre[0], kitchen.centre[1] - 0.3 * np.sign(yaw), yaw, u.base.lift_range[0])
    u.arm.reset()
    import mujoco

    mujoco.mj_forward(u.model, u.data)
    with OffscreenRenderer(u.model, size, size * 3 // 4) as renderer:
        return renderer.rgb(u.data, "head")


def main(config: HouseholdImagesConfig) -> None:
    config.out.mkdir(parents=True, exist_ok=True)
    env = embodylab.make("HouseholdTidy-v0")
    for seed in config.seeds:
        env.reset(seed=0, options={"apartment_seed": seed})
        for kind, image in (("top", top_down(env, config.size)), ("robot_eye", robots_eye(env, config.size))):
            path = config.out / f"household_apartment{seed}_{kind}.png"
            Image.fromarray(image).save(path)
            print(f"wrote {path}")


if __name__ == "__main__":
    main(tyro.cli(HouseholdImagesConfig))
