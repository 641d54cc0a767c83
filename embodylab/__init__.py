"""embodylab: MuJoCo-first embodied robotics environments with Gymnasium interfaces.

`import embodylab` registers the env ids (`embodylab/Lab...-v0`) without importing any task, torch or
open3d; `gymnasium.make("embodylab/LabReach-v0")` then builds one.
"""

from embodylab.envs.registry import env_ids, make, register_all
from embodylab.vector import make_vec

__version__ = "0.1.0"
__all__ = ["env_ids", "make", "make_vec", "register_all", "__version__"]

register_all()
