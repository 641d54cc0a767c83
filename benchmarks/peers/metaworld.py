"""Meta-World pick-place-v3 (`gymnasium.make("Meta-World/MT1", ...)`): env steps/s, reset time, raw physics.

Runs in .bench-venvs/metaworld (`make bench-peers`) and prints one JSON object on stdout:

    MUJOCO_GL=egl .bench-venvs/metaworld/bin/python benchmarks/peers/metaworld.py --steps 2000 --seed 0
"""

from __future__ import annotations

import _common

ENV_NAME = "pick-place-v3"


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    with _common.json_stdout() as emit:
        _common.unshadow()  # this file is metaworld.py
        import gymnasium as gym
        import metaworld

        # Meta-World v3's documented single-task entry point; importing metaworld registers it.
        env = gym.make("Meta-World/MT1", env_name=ENV_NAME, seed=args.seed)
        unwrapped = env.unwrapped
        model, substeps = unwrapped.model, unwrapped.frame_skip
        version = getattr(metaworld, "__version__", None) or _dist_version("metaworld")
        result = _common.base_result("metaworld", f"Meta-World/MT1:{ENV_NAME}", "metaworld", version, model)
        result["versions"]["gymnasium"] = gym.__version__
        result.update(substeps=substeps, max_path_length=unwrapped.max_path_length)

        def reset() -> None:
            env.reset()

        def step(action) -> bool:
            _, _, terminated, truncated, _ = env.step(action)
            return terminated or truncated

        actions = _common.random_actions(env.action_space.low, env.action_space.high, args.steps, args.seed)
        _common.log(f"metaworld: {args.steps} env steps")
        result.update(_common.time_steps(step, reset, actions))
        result["reset_ms"] = _common.median_reset_ms(reset, args.resets)
        reset()
        _common.log("metaworld: raw physics")
        result.update(
            _common.raw_physics(model, unwrapped.data, substeps, args.steps, unwrapped.max_path_length)
        )
        env.close()
        emit(result)


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
