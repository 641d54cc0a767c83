"""Training episodes that start from states along the demonstrations (Nair et al. 2018, "Overcoming
exploration in reinforcement learning with demonstrations", section 4: resets to demonstration states).

On LabPush the gripper starts 36 cm above the table and uniformly random exploration almost never touches
the cube (0 of 100 random episodes move it more than 1 cm), so HER has no cube motion to relabel and the
critic learns nothing about pushing outside the demonstrations themselves. Starting some training
episodes where a demonstration was mid-way — fingers behind the cube, cube part way to the goal — puts
exploration where the task happens. Only the training env is wrapped: evaluation always resets normally.

`demonstration_states(env, demo_dataset)` re-simulates each demonstration from its recorded seed with its
recorded actions (the envs are deterministic given the seed) and returns the full simulation state
(`EmbodiedEnv.get_state`) before every action, checking that the replay reproduces the recorded
observations. `DemoStateResets` is the wrapper.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from embodylab.policies.demos import DemoDatasetError, load_demo_episodes

REPLAY_TOLERANCE = 1e-4
"""largest difference allowed between a replayed and a recorded observation entry (m, rad, m/s, ...);
float32 storage rounds them to ~1e-7 relative, anything larger means the replay took another path."""


def _episode_seeds(demo_dataset: str | Path) -> list[int | None]:
    from minari import MinariDataset

    path = Path(demo_dataset)
    dataset = MinariDataset(path if path.name == "data" else path / "data")
    metadata = dataset.storage.get_episode_metadata(dataset.episode_indices)
    return [m.get("seed") for m in metadata]


def _flat(observation) -> np.ndarray:
    if isinstance(observation, dict):
        return np.concatenate([np.ravel(observation[key]) for key in sorted(observation)])
    return np.ravel(observation)


def demonstration_states(env: gym.Env, demo_dataset: str | Path, before_success: bool = False) -> np.ndarray:
    """The simulation states [n, state_size] (float64, `EmbodiedEnv.get_state`) before every action of
    every episode of the Minari dataset `demo_dataset`, re-simulated in `env` (the same task, observation
    mode and goal conditioning as the recording) from each episode's seed with its recorded actions.

    `before_success` keeps only the states before an episode first reaches its goal (`info["is_success"]`).
    The lab tasks do not end at success, so the experts hold the goal for the rest of the episode: on
    LabPush about 60% of the states are such holds, which teach a start from them nothing but standing
    still.

    Raises:
        DemoDatasetError: an episode without a recorded seed, or whose replay does not reproduce the
            recorded observations (within `REPLAY_TOLERANCE`), e.g. a dataset of another task version.
    """
    episodes = load_demo_episodes(demo_dataset, env.observation_space, env.action_space)
    seeds = _episode_seeds(demo_dataset)
    unwrapped = env.unwrapped
    states = []
    for index, (episode, seed) in enumerate(zip(episodes, seeds, strict=True)):
        if seed is None:
            raise DemoDatasetError(
                f"{demo_dataset}: episode {index} has no recorded seed, so its states cannot be re-simulated"
            )
        obs, info = env.reset(seed=seed)
        recorded = episode["observations"]
        for t, action in enumerate(episode["actions"]):
            if before_success and info["is_success"]:
                break
            expected = {k: v[t] for k, v in recorded.items()} if isinstance(recorded, dict) else recorded[t]
            error = float(np.abs(_flat(obs) - _flat(expected)).max())
            if error > REPLAY_TOLERANCE:
                raise DemoDatasetError(
                    f"{demo_dataset}: replaying episode {index} (seed {seed}) departs from the recorded "
                    f"observations at step {t} by {error:.3g} (tolerance {REPLAY_TOLERANCE}); the dataset "
                    f"was recorded with another version or configuration of {env.spec.id if env.spec else env}"
                )
            states.append(unwrapped.get_state())
            obs, _, _, _, info = env.step(action)
    if not states:
        raise DemoDatasetError(f"{demo_dataset}: every episode starts at its goal; no states to start from")
    return np.stack(states)


class DemoStateResets(gym.Wrapper):
    """With probability `probability`, `reset` continues from a uniformly drawn demonstration state
    (`states`, from `demonstration_states`) instead of the task's own start: the env resets normally
    first (its wrappers' episode counters, the time limit, restart), then `EmbodiedEnv.set_state` moves it
    to the drawn state. `info["demo_state_reset"]` says which kind of start an episode had.

    Args:
        states: [n, state_size] snapshots of this task's `get_state`.
        probability: chance in [0, 1] that an episode starts from a demonstration state.
        seed: of the draws (which episodes, which states), independent of the env's own seed.
    """

    def __init__(self, env: gym.Env, states: np.ndarray, probability: float, seed: int | None = None):
        super().__init__(env)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must lie in [0, 1]; got {probability}")
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or len(states) == 0:
            raise ValueError(f"states must be a non-empty [n, state_size] array; got shape {states.shape}")
        self.states, self.probability = states, float(probability)
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Restart the draws from `seed` (a resumed run continues with fresh ones)."""
        self.rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        from_demo = bool(self.rng.random() < self.probability)
        if from_demo:
            obs, info = self.env.unwrapped.set_state(self.states[self.rng.integers(len(self.states))])
        info["demo_state_reset"] = from_demo
        return obs, info
