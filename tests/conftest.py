import os

os.environ.setdefault("MUJOCO_GL", "egl")

import embodylab  # noqa: E402,F401  (registers the ids)
from embodylab.envs.registry import LAB_ENVS  # noqa: E402

LAB_IDS = [entry.id for entry in LAB_ENVS]
