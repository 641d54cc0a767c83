import sys

import mujoco
import numpy as np
import pytest

from embodylab.core import rendering
from embodylab.core.pointcloud import voxel_downsample_and_normals
from embodylab.core.rendering import (
    OffscreenRenderer,
    camera_intrinsics,
    configure_gl_backend,
    depth_to_pointcloud,
)

BOX_CENTER = np.array([0.1, 0.05, 0.1])
BOX_HALF_SIZE = 0.1
CAMERA_POS = np.array([0.0, -1.0, 0.6])


def box_scene() -> tuple[mujoco.MjModel, mujoco.MjData]:
    """A floor, a shadow-casting light, a 20 cm box and a camera looking down at it from 1 m."""
    spec = mujoco.MjSpec()
    spec.worldbody.add_light(pos=[0.3, -0.3, 2.0], dir=[0, 0, -1], castshadow=True)
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1])
    box = spec.worldbody.add_body(name="box", pos=BOX_CENTER)
    box.add_geom(name="box", type=mujoco.mjtGeom.mjGEOM_BOX, size=[BOX_HALF_SIZE] * 3, rgba=[1, 0, 0, 1])
    forward = BOX_CENTER - CAMERA_POS
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    spec.worldbody.add_camera(name="front", pos=CAMERA_POS, xyaxes=[*right, *up], fovy=50)
    spec.worldbody.add_camera(name="sky", pos=[0, 0, 3], xyaxes=[1, 0, 0, 0, 1, 0], fovy=10)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


@pytest.fixture(scope="module")
def scene() -> tuple[mujoco.MjModel, mujoco.MjData]:
    return box_scene()


@pytest.fixture(scope="module")
def renderer(scene):
    model, _ = scene
    with OffscreenRenderer(model, width=96, height=72) as offscreen:
        yield offscreen


def test_back_projected_box_pixels_lie_on_the_box_surface(scene, renderer):
    model, data = scene
    depth = renderer.depth(data, "front")
    on_box = renderer.geom_ids(data, "front").reshape(-1) == model.geom("box").id
    points = depth_to_pointcloud(depth, model, data, "front")[on_box]
    assert on_box.sum() > 100
    # Distance from each point to the box surface: 0 on a face, positive outside, negative inside.
    offset = np.abs(points - BOX_CENTER) - BOX_HALF_SIZE
    outside = np.linalg.norm(np.maximum(offset, 0), axis=1)
    inside = np.minimum(offset.max(axis=1), 0)
    np.testing.assert_array_less(np.abs(outside + inside), 0.01)


def test_depth_is_metric_distance_along_the_optical_axis(scene, renderer):
    model, data = scene
    depth = renderer.depth(data, "front")
    assert depth.dtype == np.float32 and depth.shape == (72, 96)
    nearest_face = np.linalg.norm(BOX_CENTER - CAMERA_POS) - BOX_HALF_SIZE
    centre = depth[36, 48]
    assert nearest_face - 0.05 < centre < nearest_face + 0.05


def test_geom_ids_mark_background_as_minus_one(scene, renderer):
    model, data = scene
    ids = renderer.geom_ids(data, "sky")
    assert ids.dtype == np.int32 and ids.shape == (72, 96)
    # Looking straight down from 3 m with a 10 degree view: the floor fills the image, the box the centre.
    assert set(np.unique(ids)) == {model.geom("floor").id, model.geom("box").id}
    spec = mujoco.MjSpec()
    spec.worldbody.add_camera(name="void", pos=[0, 0, 1])
    empty = spec.compile()
    with OffscreenRenderer(empty, width=16, height=16) as offscreen:
        assert np.all(offscreen.geom_ids(mujoco.MjData(empty), "void") == -1)


def test_rgb_renders_with_shadows_off_and_on_and_they_differ(scene):
    model, data = scene
    images = {}
    for shadows in (False, True):
        with OffscreenRenderer(model, width=96, height=72, shadows=shadows) as offscreen:
            images[shadows] = offscreen.rgb(data, "front")
    assert images[False].dtype == np.uint8 and images[False].shape == (72, 96, 3)
    assert not np.array_equal(images[False], images[True])


def test_render_into_a_given_buffer_returns_that_buffer(scene, renderer):
    _, data = scene
    out = np.zeros((72, 96, 3), dtype=np.uint8)
    assert renderer.rgb(data, 0, out=out) is out
    assert out.any()


def test_unknown_camera_names_the_valid_cameras(scene, renderer):
    _, data = scene
    with pytest.raises(ValueError, match="front"):
        renderer.rgb(data, "nope")


def test_image_larger_than_the_offscreen_buffer_is_rejected(scene):
    model, _ = scene
    with pytest.raises(ValueError, match="offscreen buffer"):
        OffscreenRenderer(model, width=model.vis.global_.offwidth + 1, height=8)


def test_intrinsics_focal_length_follows_fovy(scene):
    model, _ = scene
    intrinsics = camera_intrinsics(model, "front", width=96, height=72)
    assert intrinsics[1, 1] == pytest.approx(36 / np.tan(np.deg2rad(25)))
    assert intrinsics[0, 2] == pytest.approx(47.5) and intrinsics[1, 2] == pytest.approx(35.5)


@pytest.fixture
def headless(monkeypatch):
    """No display, no MUJOCO_GL, no cached backend, and no re-binding of this process's mujoco."""
    for name in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(rendering, "_configured_backend", None)
    monkeypatch.setattr(rendering, "_bind_mujoco_gl_context", lambda backend: None)
    return monkeypatch


def fake_probe(working: set[str]):
    return lambda backend: None if backend in working else f"{backend} unavailable"


def test_headless_picks_egl_and_exports_it(headless):
    headless.setattr(rendering, "_probe_backend", fake_probe({"egl", "osmesa"}))
    assert configure_gl_backend() == "egl"
    assert rendering.os.environ["MUJOCO_GL"] == "egl"
    assert rendering.os.environ["PYOPENGL_PLATFORM"] == "egl"


def test_headless_falls_back_to_osmesa_when_egl_fails(headless):
    headless.setattr(rendering, "_probe_backend", fake_probe({"osmesa"}))
    assert configure_gl_backend() == "osmesa"
    assert rendering.os.environ["MUJOCO_GL"] == "osmesa"


def test_headless_without_any_backend_says_what_to_install(headless):
    headless.setattr(rendering, "_probe_backend", fake_probe(set()))
    with pytest.raises(RuntimeError, match="libegl1.*libosmesa6.*MUJOCO_GL"):
        configure_gl_backend()


def test_explicit_mujoco_gl_is_respected_without_probing(headless):
    headless.setenv("MUJOCO_GL", "osmesa")
    headless.setattr(rendering, "_probe_backend", pytest.fail)
    assert configure_gl_backend() == "osmesa"


def test_display_keeps_mujocos_default_backend(headless):
    headless.setenv("DISPLAY", ":0")
    headless.setattr(rendering, "_probe_backend", pytest.fail)
    assert configure_gl_backend() == "glfw"
    assert "MUJOCO_GL" not in rendering.os.environ


def test_voxel_downsample_without_open3d_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(ImportError, match=r"embodylab\[vision\]"):
        voxel_downsample_and_normals(np.zeros((4, 3)), voxel_size=0.01)


def test_voxel_downsample_with_open3d_gives_plane_normals():
    pytest.importorskip("open3d")
    from embodylab.core.pointcloud import voxel_downsample_and_normals

    grid = np.stack(np.meshgrid(np.linspace(0, 0.2, 60), np.linspace(0, 0.2, 60)), -1).reshape(-1, 2)
    plane = np.concatenate([grid, np.full((len(grid), 1), 0.05)], axis=1)
    points, normals = voxel_downsample_and_normals(plane, voxel_size=0.01)
    assert 300 < len(points) < len(plane)
    np.testing.assert_allclose(points[:, 2], 0.05, atol=1e-6)
    assert np.all(np.abs(normals[:, 2]) > 0.99)


def test_the_coarse_floor_grid_renders_what_a_fine_one_does():
    """FLOOR_GRID_SPACING (one lit quad per grid cell) is a speed setting, not a look: under the lab's
    lights the image matches the 5 cm grid's to within one intensity level."""
    import gymnasium as gym

    import embodylab  # noqa: F401  (registers the envs)
    from embodylab.core.builders import FLOOR_GRID_SPACING

    env = gym.make("embodylab/LabPickPlace-v0")
    env.reset(seed=0)
    task = env.unwrapped
    floor = task.model.geom("floor").id
    assert task.model.geom_size[floor, 2] == FLOOR_GRID_SPACING
    images = []
    for spacing in (FLOOR_GRID_SPACING, 0.05):
        task.model.geom_size[floor, 2] = spacing
        with OffscreenRenderer(task.model, 128, 128) as renderer:
            images.append([renderer.rgb(task.data, camera).astype(int) for camera in ("front", "side")])
    for coarse, fine in zip(*images, strict=True):
        assert np.abs(coarse - fine).max() <= 1
    env.close()
