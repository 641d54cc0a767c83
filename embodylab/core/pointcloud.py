"""Point-cloud post-processing; needs the optional ``vision`` extra (open3d)."""

from __future__ import annotations

import numpy as np


def voxel_downsample_and_normals(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Averages `points` ``[N, 3]`` (metres) per voxel of edge `voxel_size` and estimates unit normals.

    Returns ``(points [M, 3], normals [M, 3])`` as float32, in the frame of the input. Normals come from a
    local plane fit over neighbours within two voxels; their sign is arbitrary.
    """
    try:
        import open3d
    except ImportError as err:
        raise ImportError(
            "voxel_downsample_and_normals needs open3d: pip install 'embodylab[vision]'"
        ) from err
    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be positive metres, got {voxel_size}")
    cloud = open3d.geometry.PointCloud(open3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    cloud = cloud.voxel_down_sample(voxel_size)
    cloud.estimate_normals(open3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel_size, max_nn=30))
    return np.asarray(cloud.points, dtype=np.float32), np.asarray(cloud.normals, dtype=np.float32)
