"""The `MjSpec` pieces every embodylab suite shares: physics options, render settings, floor, sky, lights.

The lab and household suites reach these through `mujoco_backend.build_mjspec`; the team suite builds
its scene with `MjSpec` directly (`envs/team/scene.py`) and calls them with its own values. Each
builder writes exactly what it is given, so a suite's compiled model depends only on its arguments.
Units: metres, seconds; colours are RGB in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco

from embodylab.core.scene import LightSpec

MAX_OFFSCREEN = 1024
"""pixels: the largest offscreen frame (width and height) every compiled scene allows."""
FLOOR_GRID_SPACING = 0.5
"""metres between the rendered grid lines of a floor plane (its size[2]; collision ignores it). The renderer
draws one lit quad per grid cell: at 0.05 m a 6 m floor is 14,400 quads, which cost a software rasteriser
~40% of a 64x64 frame, for an image identical to within one intensity level under the scenes' directional
lights (benchmarks/render.py)."""
CONES = {"elliptic": mujoco.mjtCone.mjCONE_ELLIPTIC, "pyramidal": mujoco.mjtCone.mjCONE_PYRAMIDAL}


def set_physics_options(
    spec: mujoco.MjSpec, timestep: float, cone: str = "elliptic", noslip_iterations: int = 0
) -> None:
    """Radian angles, the implicit-fast integrator at `timestep` (s), the friction `cone` ("elliptic" or
    "pyramidal") and `noslip_iterations` of MuJoCo's no-slip solver (0: off)."""
    if cone not in CONES:
        raise ValueError(f"unknown friction cone {cone!r}; valid cones: {', '.join(CONES)}")
    spec.compiler.degree = False  # every angle in embodylab is in radians
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = CONES[cone]
    spec.option.noslip_iterations = noslip_iterations


def set_render_quality(
    spec: mujoco.MjSpec,
    numslices: int,
    numstacks: int,
    headlight_ambient: Sequence[float],
    headlight_diffuse: Sequence[float],
    shadowsize: int | None = None,
) -> None:
    """Offscreen buffers of `MAX_OFFSCREEN` pixels, no multisampling, round shapes of `numslices` x
    `numstacks` facets, the headlight's ambient and diffuse RGB, and the shadow map size (None: MuJoCo's)."""
    spec.visual.global_.offwidth = MAX_OFFSCREEN
    spec.visual.global_.offheight = MAX_OFFSCREEN
    if shadowsize is not None:
        spec.visual.quality.shadowsize = shadowsize
    spec.visual.quality.numslices = numslices
    spec.visual.quality.numstacks = numstacks
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = list(headlight_ambient)
    spec.visual.headlight.diffuse = list(headlight_diffuse)


def add_skybox(spec: mujoco.MjSpec, top_rgb: Sequence[float], bottom_rgb: Sequence[float]) -> None:
    """A vertical gradient skybox from `top_rgb` to `bottom_rgb` (drawn when the renderer's skybox is on)."""
    spec.add_texture(
        name="sky",
        type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        rgb1=list(top_rgb),
        rgb2=list(bottom_rgb),
        width=64,
        height=64,
    )


def add_checker_floor(
    spec: mujoco.MjSpec,
    half_size: float,
    rgb1: Sequence[float],
    rgb2: Sequence[float],
    texrepeat: float,
    reflectance: float,
    collision_bits: tuple[int, int],
    height: float = 0.0,
) -> None:
    """The plane geom "floor" at z = `height` spanning +-`half_size` m in x and y, with a checker texture
    of `rgb1`/`rgb2` repeated `texrepeat` times across it and (contype, conaffinity) `collision_bits`."""
    checker = spec.add_texture(
        name="floor_tex",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=list(rgb1),
        rgb2=list(rgb2),
        width=256,
        height=256,
    )
    material = spec.add_material(name="floor_mat", texrepeat=[texrepeat, texrepeat], reflectance=reflectance)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = checker.name
    spec.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[half_size, half_size, FLOOR_GRID_SPACING],
        pos=[0, 0, height],
        material="floor_mat",
        contype=collision_bits[0],
        conaffinity=collision_bits[1],
    )


def add_lights(spec: mujoco.MjSpec, lights: Sequence[LightSpec]) -> None:
    """The world-frame lights, in order: directional ones, or spot lights at `pos` along `direction`."""
    for light in lights:
        spec.worldbody.add_light(
            pos=light.pos,
            dir=light.direction,
            diffuse=light.diffuse,
            castshadow=light.castshadow,
            type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
            if light.directional
            else mujoco.mjtLightType.mjLIGHT_SPOT,
        )
