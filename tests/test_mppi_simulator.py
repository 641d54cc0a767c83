import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import mppi_simulator  # noqa: E402

from embodylab.world_models.planning import MPPIConfig  # noqa: E402


def test_simulator_returns_replay_the_task_from_the_saved_state():
    """Scores come from real rollouts from the given state: equal plans score equally, and the env the
    planner acts in is left untouched."""
    from embodylab.envs.registry import make

    env = make("embodylab/LabPush-v0")
    env.reset(seed=3)
    state = env.unwrapped.get_state()
    config = MPPIConfig(horizon=3, samples=4, elites=2, cost="shaped")
    returns = mppi_simulator.SimulatorReturns("embodylab/LabPush-v0", config)
    plans = torch.zeros(4, 3, 4)
    plans[2:] = torch.tensor([0.0, 0.0, -1.0, 1.0])  # down: towards the table, away from the travel height
    scores = returns(state, plans)
    assert scores.shape == (4,)
    assert scores[0] == scores[1] and scores[2] == scores[3] and scores[0] != scores[2]
    np.testing.assert_array_equal(env.unwrapped.get_state(), state)


def test_a_tiny_run_writes_its_json(tmp_path):
    config = mppi_simulator.SimulatorMPPIConfig(
        episodes=1,
        mppi=MPPIConfig(horizon=2, samples=3, iterations=1, elites=2, cost="shaped"),
        out=tmp_path / "sim.json",
    )
    result = mppi_simulator.run(config)
    assert result["episodes"][0]["steps"] == 100
    assert 0.0 <= result["success_rate"] <= 1.0 and result["seconds_per_control_step"] > 0
