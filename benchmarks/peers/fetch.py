"""Gymnasium-Robotics FetchPickAndPlace-v4: env steps/s, reset time, raw physics rate, 64x64 render fps.

Runs in .bench-venvs/fetch (`make bench-peers`) and prints one JSON object on stdout:

    MUJOCO_GL=egl .bench-venvs/fetch/bin/python benchmarks/peers/fetch.py --steps 2000 --seed 0
"""

from __future__ import annotations

import os
import time

import _common
import mujoco

ENV_ID = "FetchPickAndPlace-v4"
RENDER_SIZE = 64
RENDER_FRAMES = 300


def render_fps(model: mujoco.MjModel, data: mujoco.MjData, camera_config: dict) -> dict:
    """64x64 rgb frames/s with mujoco.Renderer at the model's own visual settings (shadows as it defines)."""
    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, camera)
    for key, value in camera_config.items():  # the view env.render() shows
        if key == "lookat":
            camera.lookat[:] = value
        else:
            setattr(camera, key, value)
    with mujoco.Renderer(model, RENDER_SIZE, RENDER_SIZE) as renderer:
        for _ in range(10):  # warm-up: the first frames compile shaders and upload meshes
            renderer.update_scene(data, camera)
            renderer.render()
        start = time.perf_counter()
        for _ in range(RENDER_FRAMES):
            renderer.update_scene(data, camera)
            renderer.render()
        fps = RENDER_FRAMES / (time.perf_counter() - start)
    return {
        "render_fps_64": fps,
        "render": {
            "frames": RENDER_FRAMES,
            "camera": "free camera at gymnasium_robotics' DEFAULT_CAMERA_CONFIG (the env.render() view)",
            "mujoco_gl": os.environ.get("MUJOCO_GL", ""),
            "lights_casting_shadows": int(model.light_castshadow.sum()),
            "shadowsize": int(model.vis.quality.shadowsize),
            "offsamples": int(model.vis.quality.offsamples),
        },
    }


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    with _common.json_stdout() as emit:
        _common.unshadow()
        import gymnasium as gym
        import gymnasium_robotics
        from gymnasium_robotics.envs.fetch.fetch_env import DEFAULT_CAMERA_CONFIG

        gym.register_envs(gymnasium_robotics)
        env = gym.make(ENV_ID)
        unwrapped = env.unwrapped
        model, substeps = unwrapped.model, unwrapped.n_substeps
        result = _common.base_result(
            "fetch", ENV_ID, "gymnasium_robotics", gymnasium_robotics.__version__, model
        )
        result["versions"]["gymnasium"] = gym.__version__
        result["substeps"] = substeps
        result["max_episode_steps"] = env.spec.max_episode_steps

        seed = [args.seed]

        def reset() -> None:
            env.reset(seed=seed[0])
            seed[0] += 1

        def step(action) -> bool:
            _, _, terminated, truncated, _ = env.step(action)
            return terminated or truncated

        actions = _common.random_actions(env.action_space.low, env.action_space.high, args.steps, args.seed)
        _common.log(f"fetch: {args.steps} env steps")
        result.update(_common.time_steps(step, reset, actions))
        result["reset_ms"] = _common.median_reset_ms(reset, args.resets)
        reset()
        _common.log("fetch: raw physics")
        result.update(
            _common.raw_physics(model, unwrapped.data, substeps, args.steps, env.spec.max_episode_steps)
        )
        _common.log("fetch: rendering")
        result.update(render_fps(model, unwrapped.data, DEFAULT_CAMERA_CONFIG))
        env.close()
        emit(result)


if __name__ == "__main__":
    main()
