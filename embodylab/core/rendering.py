"""Offscreen rendering of any compiled MuJoCo model: RGB, metric depth, per-pixel geom ids, point clouds.

Nothing here knows about tasks: give it an ``MjModel``, an ``MjData`` and a camera name or id.

The OpenGL backend is chosen lazily, when the first :class:`OffscreenRenderer` is created (or when
:func:`configure_gl_backend` is called), never at import time. MuJoCo binds its ``GLContext`` class when
``mujoco`` is imported, reading ``MUJOCO_GL`` then; :func:`configure_gl_backend` re-binds it when the
backend it picks differs, so the import order of ``mujoco`` and this module does not matter.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import mujoco
import numpy as np

_HEADLESS_BACKENDS = ("egl", "osmesa")
_INSTALL_HINT = (
    "Install a headless OpenGL backend and select it with MUJOCO_GL: on Debian/Ubuntu "
    "`apt-get install libegl1 libgl1-mesa-dri` and set MUJOCO_GL=egl, or `apt-get install libosmesa6` "
    "and set MUJOCO_GL=osmesa (or run `make sysdeps`)."
)
# A new interpreter creates one tiny offscreen context and renders one frame with the backend under test;
# a failed backend can leave a process unable to use another one, so the probe never runs in this process.
_PROBE_SCRIPT = "import mujoco; r = mujoco.Renderer(mujoco.MjSpec().compile(), 8, 8); r.render(); r.close()"
_configured_backend: str | None = None
# A plain int: comparing a numpy array with the pybind11 enum falls back to a per-element Python loop.
_OBJ_GEOM = int(mujoco.mjtObj.mjOBJ_GEOM)


def _probe_backend(backend: str) -> str | None:
    """Tries `backend` in a fresh interpreter; returns None when it renders, else the reason it failed."""
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT], env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return "timed out creating an offscreen context"
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def _bind_mujoco_gl_context(backend: str) -> None:
    """Points mujoco's renderer at `backend`'s GLContext if `mujoco` was imported with another one."""
    gl_context = sys.modules.get("mujoco.rendering.classic.gl_context")
    if gl_context is None or backend not in (*_HEADLESS_BACKENDS, "glfw"):
        return
    module_name = f"mujoco.{backend}"
    if getattr(getattr(gl_context, "GLContext", None), "__module__", None) == module_name:
        return
    try:
        gl_context_cls = importlib.import_module(module_name).GLContext
    except ImportError as err:
        raise RuntimeError(
            f"MuJoCo GL backend {backend!r} cannot be loaded into this process ({err}). Set "
            f"MUJOCO_GL={backend} in the environment before Python starts. {_INSTALL_HINT}"
        ) from err
    gl_context.GLContext = gl_context_cls
    mujoco.GLContext = gl_context_cls


def _choose_backend() -> str:
    requested = os.environ.get("MUJOCO_GL", "").strip().lower()
    if requested:
        return requested
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return "glfw"
    pyopengl_platform = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    # PyOpenGL serves one platform per process, so a preset PYOPENGL_PLATFORM leaves only that choice.
    candidates = (pyopengl_platform,) if pyopengl_platform in _HEADLESS_BACKENDS else _HEADLESS_BACKENDS
    failures = []
    for backend in candidates:
        reason = _probe_backend(backend)
        if reason is None:
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            return backend
        failures.append(f"{backend}: {reason}")
    raise RuntimeError(
        "No display (DISPLAY/WAYLAND_DISPLAY unset) and no headless OpenGL backend works "
        f"({'; '.join(failures)}). {_INSTALL_HINT}"
    )


def configure_gl_backend() -> str:
    """Picks the OpenGL backend for offscreen rendering and returns its name (`MUJOCO_GL` value).

    An explicit ``MUJOCO_GL`` is respected; with a display, MuJoCo's default (GLFW) is kept. Otherwise EGL
    and then OSMesa are probed once, each in a subprocess, and the first that renders is exported as
    ``MUJOCO_GL``/``PYOPENGL_PLATFORM`` (so child processes inherit it). The choice is cached per process.

    Raises:
        RuntimeError: no display and neither EGL nor OSMesa can create a context; the message says what
            to install.
    """
    global _configured_backend
    if _configured_backend is None:
        # Mesa's software rasteriser (llvmpipe) splits every frame across worker threads; for the small
        # frames of image observations the hand-offs cost more than they save (64x64 rgb ~30% faster on
        # one thread), and vectorised envs already use the cores. Only a default: users may set it.
        os.environ.setdefault("LP_NUM_THREADS", "0")
        backend = _choose_backend()
        _bind_mujoco_gl_context(backend)
        _configured_backend = backend
    return _configured_backend


def _camera_id(model: mujoco.MjModel, camera: int | str) -> int:
    """Resolves a camera name or id to a valid camera id of `model`."""
    cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) if isinstance(camera, str) else camera
    if not 0 <= cam < model.ncam:
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        raise ValueError(f"unknown camera {camera!r}; the model's cameras are {dict(enumerate(names))}")
    return int(cam)


class OffscreenRenderer:
    """Renders RGB, metric depth and per-pixel geom ids of one model from its named cameras.

    Shadows, reflections and the skybox are off by default: software EGL (Mesa llvmpipe) renders an order
    of magnitude faster without them. One ``mujoco.Renderer`` is shared by all three image kinds.
    Every method takes an optional ``out`` array to render into, avoiding an allocation per frame; without
    it a new array is returned, so earlier observations are never overwritten.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        width: int,
        height: int,
        shadows: bool = False,
        reflections: bool = False,
        skybox: bool = False,
    ) -> None:
        offwidth, offheight = model.vis.global_.offwidth, model.vis.global_.offheight
        if width > offwidth or height > offheight:
            raise ValueError(
                f"image size {width}x{height} exceeds the model's offscreen buffer {offwidth}x{offheight}; "
                "enlarge it before compiling (`spec.visual.global_.offwidth/offheight`) or on the model "
                "before creating the renderer (`model.vis.global_.offwidth/offheight`)"
            )
        backend = configure_gl_backend()
        try:
            self._renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as err:
            raise RuntimeError(
                f"could not create an offscreen OpenGL context with MUJOCO_GL={backend!r}: {err}. "
                f"{_INSTALL_HINT}"
            ) from err
        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = shadows
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = reflections
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = skybox
        self.model = model
        self.width = width
        self.height = height
        self._segmentation = np.empty((height, width, 2), dtype=np.int32)

    def _update(self, data: mujoco.MjData, camera: int | str | mujoco.MjvCamera) -> None:
        if isinstance(camera, mujoco.MjvCamera):
            self._renderer.update_scene(data, camera)
        else:
            self._renderer.update_scene(data, _camera_id(self.model, camera))

    def rgb(
        self, data: mujoco.MjData, camera: int | str | mujoco.MjvCamera, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Colour image, uint8 ``[H, W, 3]``, from a model camera (name or id) or a free `MjvCamera`."""
        self._renderer.disable_depth_rendering()
        self._renderer.disable_segmentation_rendering()
        self._update(data, camera)
        return self._renderer.render(out=out)

    def depth(self, data: mujoco.MjData, camera: int | str, out: np.ndarray | None = None) -> np.ndarray:
        """Depth along the camera's optical axis in metres, float32 ``[H, W]``.

        Background pixels read the far clipping distance (``model.vis.map.zfar * model.stat.extent``).
        """
        self._renderer.enable_depth_rendering()
        self._update(data, camera)
        return self._renderer.render(out=out)

    def geom_ids(self, data: mujoco.MjData, camera: int | str, out: np.ndarray | None = None) -> np.ndarray:
        """Id of the geom seen at each pixel, int32 ``[H, W]``; -1 for background and non-geom objects."""
        self._renderer.enable_segmentation_rendering()
        self._update(data, camera)
        segmentation = self._renderer.render(out=self._segmentation)
        if out is None:
            out = np.empty((self.height, self.width), dtype=np.int32)
        is_geom = segmentation[..., 1] == _OBJ_GEOM
        np.copyto(out, np.where(is_geom, segmentation[..., 0], -1))
        return out

    def close(self) -> None:
        """Frees the OpenGL context; the renderer cannot be used afterwards."""
        self._renderer.close()

    def __enter__(self) -> OffscreenRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def camera_intrinsics(model: mujoco.MjModel, camera_id: int | str, width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics ``K [3, 3]`` in pixels of a perspective camera, from its vertical ``fovy``.

    Pixels are square; the principal point is the image centre, with pixel ``(u, v)`` = (column, row)
    centred at integer coordinates, so ``c = ((W - 1) / 2, (H - 1) / 2)``.
    """
    cam = _camera_id(model, camera_id)
    if model.cam_projection[cam] != mujoco.mjtProjection.mjPROJ_PERSPECTIVE:
        raise ValueError(f"camera {camera_id!r} is orthographic; intrinsics need a perspective camera")
    if np.any(model.cam_sensorsize[cam] > 0):
        raise ValueError(
            f"camera {camera_id!r} is defined by sensorsize/focal length; only fovy cameras are supported"
        )
    focal = 0.5 * height / np.tan(np.deg2rad(model.cam_fovy[cam]) / 2)
    return np.array(
        [[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]], dtype=np.float64
    )


def depth_to_pointcloud(
    depth: np.ndarray, model: mujoco.MjModel, data: mujoco.MjData, camera_id: int | str
) -> np.ndarray:
    """Back-projects a depth image ``[H, W]`` (metres, as :meth:`OffscreenRenderer.depth`) to world points.

    Returns float32 ``[H * W, 3]`` in the world frame, row-major over pixels (so index ``v * W + u`` is
    pixel ``(u, v)``). MuJoCo cameras look along -z of their frame with +y up and +x right; the pose is read
    from ``data.cam_xpos`` / ``data.cam_xmat``, so `data` must be the state the depth was rendered from.
    """
    height, width = depth.shape
    cam = _camera_id(model, camera_id)
    intrinsics = camera_intrinsics(model, cam, width, height)
    rows, cols = np.indices((height, width), dtype=np.float64)
    z = depth.astype(np.float64)
    # Image rows grow downwards and the camera looks along -z: flip y and z relative to the OpenCV frame.
    points_camera = np.stack(
        [
            (cols - intrinsics[0, 2]) * z / intrinsics[0, 0],
            -(rows - intrinsics[1, 2]) * z / intrinsics[1, 1],
            -z,
        ],
        axis=-1,
    ).reshape(-1, 3)
    rotation = data.cam_xmat[cam].reshape(3, 3)
    return (points_camera @ rotation.T + data.cam_xpos[cam]).astype(np.float32)
