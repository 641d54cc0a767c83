"""robosuite Lift (Panda, default OSC controller, state observations): env steps/s, reset time, raw physics.

Runs in .bench-venvs/robosuite (`make bench-peers`) and prints one JSON object on stdout:

    MUJOCO_GL=egl .bench-venvs/robosuite/bin/python benchmarks/peers/robosuite.py --steps 2000 --seed 0
"""

from __future__ import annotations

import _common
import numpy as np

ENV_ID = "Lift"


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    with _common.json_stdout() as emit:
        _common.unshadow()  # this file is robosuite.py
        import robosuite as suite

        np.random.seed(args.seed)  # robosuite's placement samplers draw from numpy's global generator
        env = suite.make(
            ENV_ID,
            robots="Panda",
            use_camera_obs=False,
            has_renderer=False,
            has_offscreen_renderer=False,
        )
        model, data = env.sim.model._model, env.sim.data._data
        substeps = round(env.control_timestep / env.model_timestep)
        result = _common.base_result("robosuite", f"{ENV_ID}/Panda", "robosuite", suite.__version__, model)
        arm = env.robots[0].part_controllers[env.robots[0].arms[0]]
        result.update(
            substeps=substeps,
            control_freq=env.control_freq,
            horizon=env.horizon,
            controller=f"{type(env.robots[0].composite_controller).__name__}: {type(arm).__name__}",
        )

        def reset() -> None:
            env.reset()

        def step(action) -> bool:
            _, _, done, _ = env.step(action)
            return done

        low, high = env.action_spec
        actions = _common.random_actions(low, high, args.steps, args.seed)
        _common.log(f"robosuite: {args.steps} env steps")
        result.update(_common.time_steps(step, reset, actions))
        _common.log(f"robosuite: {args.resets} resets")
        result["reset_ms"] = _common.median_reset_ms(reset, args.resets)
        reset()
        _common.log("robosuite: raw physics")
        model, data = env.sim.model._model, env.sim.data._data  # a hard reset rebuilds the sim
        result.update(_common.raw_physics(model, data, substeps, args.steps, env.horizon))
        env.close()
        emit(result)


if __name__ == "__main__":
    main()
