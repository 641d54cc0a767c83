"""Expert demonstrations as Minari datasets, and replay buffers that learn from them by symmetric sampling.

`record_demos` plays the task's scripted expert and writes a Minari dataset; `load_demo_episodes` reads
one back and checks it against the env's spaces. `DemoHerReplayBuffer` / `DemoReplayBuffer` hold the
online experience (as SB3's buffers do) plus a second buffer filled once from the demonstrations, and
every `sample(batch_size)` draws half the batch from each — symmetric sampling, as in RLPD (Ball et al.
2023) — with HER relabelling applied to both halves in the goal-conditioned case.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.her import HerReplayBuffer

from embodylab.datasets import write_local_dataset
from embodylab.rollout import Transition, play_episode
from embodylab.skills.experts import ExpertPolicy, make_expert

DATASET_NAME = "expert-v0"
"""Minari's dataset name; the id is `embodylab/<Task>/expert-v0`."""


class DemoDatasetError(ValueError):
    """A demonstration dataset that is missing, unreadable or does not fit the env; names the path."""


class _EpisodeLists:
    """One episode's observations, actions, rewards and flags as `play_episode` reports them."""

    def __init__(self) -> None:
        self.observations: list = []
        self.actions: list = []
        self.rewards: list[float] = []
        self.terminations: list[bool] = []
        self.truncations: list[bool] = []

    def reset(self, observation, info: dict) -> None:
        self.observations.append(observation)

    def add(self, step: Transition) -> None:
        self.observations.append(step.observation)
        self.actions.append(step.action)
        self.rewards.append(float(step.reward))
        self.terminations.append(bool(step.terminated))
        self.truncations.append(bool(step.truncated))

    def buffer(self, episode_id: int, seed: int):
        from minari.data_collector import EpisodeBuffer

        first = self.observations[0]
        if isinstance(first, dict):
            stacked = {key: np.stack([o[key] for o in self.observations]) for key in first}
        else:
            stacked = np.stack(self.observations)
        return EpisodeBuffer(
            id=episode_id,
            seed=seed,
            observations=stacked,
            actions=np.stack(self.actions).astype(np.float32),
            rewards=self.rewards,
            terminations=self.terminations,
            truncations=self.truncations,
        )


def record_demos(env: gym.Env, episodes: int, root: str | Path, seed: int = 0) -> Path:
    """Plays `episodes` expert episodes of `env` (seeds `seed`, `seed + 1`, ...) and writes them as the
    Minari dataset `embodylab/<Task>/expert-v0` under `root`. Returns the dataset's data directory, the
    path `load_demo_episodes` and `demos --dataset` take. Failed episodes are kept: an expert's near-misses
    are still good actions, and HER relabels them to successes."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes}")
    policy = ExpertPolicy(make_expert(env))
    buffers = []
    for episode in range(episodes):
        lists = _EpisodeLists()
        play_episode(env, policy, seed=seed + episode, on_reset=lists.reset, on_step=lists.add)
        buffers.append(lists.buffer(episode, seed + episode))
    task = type(env.unwrapped).__name__.removesuffix("Env")
    dataset_id = f"embodylab/{task}/{DATASET_NAME}"
    return write_local_dataset(
        root,
        dataset_id,
        buffers,
        env=env,
        eval_env=env.spec,
        algorithm_name="embodylab scripted expert",
        description=f"{episodes} episodes of the scripted expert (embodylab.skills.experts)",
    )


def load_demo_episodes(
    path: str | Path, observation_space: spaces.Space, action_space: spaces.Space
) -> list[dict]:
    """The episodes of the Minari dataset at `path` (its directory or its `data/` directory) as dicts of
    `observations` ([T+1, ...] or a dict of them), `actions` [T, act_dim], `rewards`, `terminations`,
    `truncations` [T].

    Raises:
        DemoDatasetError: no dataset at `path`, an unreadable one, or one whose observations or actions do
            not fit the spaces (e.g. recorded without `goal_conditioned=True`, used for a HER run).
    """
    from minari import MinariDataset

    path = Path(path)
    data_path = path if path.name == "data" else path / "data"
    if not (data_path / "metadata.json").is_file():
        raise DemoDatasetError(f"no Minari dataset at {path} (expected {data_path / 'metadata.json'})")
    try:
        dataset = MinariDataset(data_path)
        raw = list(dataset.iterate_episodes())
    except Exception as err:  # h5py and Minari raise many kinds (KeyError, OSError, ...) for broken files
        raise DemoDatasetError(f"cannot read the Minari dataset at {data_path}: {err!r}") from err
    if not raw:
        raise DemoDatasetError(f"the Minari dataset at {data_path} holds no episodes")

    obs_space, act_space = observation_space, action_space
    episodes = []
    for episode in raw:
        fields = {
            "observations": episode.observations,
            "actions": episode.actions,
            "rewards": episode.rewards,
            "terminations": episode.terminations,
            "truncations": episode.truncations,
        }
        absent = [name for name, value in fields.items() if value is None]
        if absent:
            raise DemoDatasetError(f"{data_path}: episode {episode.id} lacks the fields {absent}")
        length = len(episode.actions)
        observations = fields["observations"]
        if isinstance(obs_space, spaces.Dict):
            if not isinstance(observations, dict):
                raise DemoDatasetError(
                    f"{data_path}: observations are one array, the env's are a dict of {sorted(obs_space.spaces)}"
                )
            missing = sorted(set(obs_space.spaces) - set(observations))
            if missing:
                raise DemoDatasetError(f"{data_path}: observations lack the keys {missing} the env has")
            shapes = {
                key: (np.shape(observations[key]), (length + 1, *obs_space[key].shape)) for key in obs_space
            }
        else:
            if isinstance(observations, dict):
                raise DemoDatasetError(
                    f"{data_path}: observations are a dict of {sorted(observations)}, the env's are one array"
                )
            shapes = {"observations": (np.shape(observations), (length + 1, *obs_space.shape))}
        shapes["actions"] = (np.shape(episode.actions), (length, *act_space.shape))
        for name, (shape, expected) in shapes.items():
            if shape != expected:
                raise DemoDatasetError(
                    f"{data_path}: {name} of episode {episode.id} has shape {shape}; expected {expected}"
                )
        episodes.append(fields)
    return episodes


# ---- symmetric sampling -------------------------------------------------------------------------------
def _concatenate_samples(first, second):
    """One SB3 samples tuple (`ReplayBufferSamples` or `DictReplayBufferSamples`) of two, first rows first."""

    def cat(a, b):
        if a is None:
            return None
        if isinstance(a, dict):
            return {key: th.cat((a[key], b[key])) for key in a}
        return th.cat((a, b))

    return type(first)(*(cat(a, b) for a, b in zip(first, second, strict=True)))


def _fill(buffer: ReplayBuffer, episodes: list[dict]) -> None:
    """Adds every transition of `episodes` to `buffer` (one env), marking time-limit ends as timeouts so
    that the critic bootstraps through them exactly as it does for online episodes."""
    for episode in episodes:
        observations, length = episode["observations"], len(episode["actions"])
        for t in range(length):
            if isinstance(observations, dict):
                obs = {key: value[t][None] for key, value in observations.items()}
                next_obs = {key: value[t + 1][None] for key, value in observations.items()}
            else:
                obs, next_obs = observations[t][None], observations[t + 1][None]
            terminated, truncated = bool(episode["terminations"][t]), bool(episode["truncations"][t])
            last = t == length - 1
            # An episode cut short of its end in the dataset is closed here, as a time limit.
            done = terminated or truncated or last
            infos = [{"TimeLimit.truncated": done and not terminated}]
            buffer.add(
                obs,
                next_obs,
                episode["actions"][t][None],
                np.array([episode["rewards"][t]]),
                np.array([done]),
                infos,
            )


class _SymmetricSampling:
    """Mixin over an SB3 replay buffer: `self` holds online experience, `self.demos` the demonstrations,
    and `sample(batch_size)` returns `batch_size - batch_size // 2` online rows, then `batch_size // 2`
    demonstration rows."""

    demos: ReplayBuffer

    def _load_demos(self, demo_dataset: str, demo_buffer: ReplayBuffer) -> None:
        _fill(
            demo_buffer,
            load_demo_episodes(demo_dataset, demo_buffer.observation_space, demo_buffer.action_space),
        )
        self.demos = demo_buffer
        self.demo_dataset = demo_dataset

    @staticmethod
    def demo_rows(batch_size: int) -> int:
        """How many rows of a `sample(batch_size)` are demonstrations: the last `batch_size // 2`."""
        return batch_size // 2

    def sample(self, batch_size: int, env=None):
        n_demo = self.demo_rows(batch_size)
        online = super().sample(batch_size - n_demo, env)
        return _concatenate_samples(online, self.demos.sample(n_demo, env))


def require_a_finished_episode(buffer: HerReplayBuffer) -> None:
    """Raises SB3's error where its `HerReplayBuffer.sample` does: no episode has ended yet, so no
    transition can be drawn."""
    if not np.any(buffer.ep_length > 0):
        raise RuntimeError(
            "Unable to sample before the end of the first episode. We recommend choosing a value "
            "for learning_starts that is greater than the maximum number of timesteps in the environment."
        )


def her_samples(buffer: HerReplayBuffer, drawn: np.ndarray, env=None):
    """What SB3 2.9's `HerReplayBuffer.sample` returns for the flat transition indices `drawn`: the first
    `her_ratio` of them relabelled (virtual), the rest as stored (real), real rows first. Built with
    `_concatenate_samples`, which keeps any `discounts` the halves carry (SB3's own rebuild drops them)."""
    batch_indices, env_indices = np.unravel_index(drawn, buffer.ep_length.shape)
    nb_virtual = int(buffer.her_ratio * len(drawn))
    virtual_batch_indices, real_batch_indices = np.split(batch_indices, [nb_virtual])
    virtual_env_indices, real_env_indices = np.split(env_indices, [nb_virtual])
    real = buffer._get_real_samples(real_batch_indices, real_env_indices, env)
    virtual = buffer._get_virtual_samples(virtual_batch_indices, virtual_env_indices, env)
    return _concatenate_samples(real, virtual)


def _demo_transitions(demo_dataset: str) -> int:
    from minari import MinariDataset

    path = Path(demo_dataset)
    data_path = path if path.name == "data" else path / "data"
    try:
        return MinariDataset(data_path).total_steps
    except Exception as err:
        raise DemoDatasetError(f"cannot read the Minari dataset at {data_path}: {err!r}") from err


class DemoHerReplayBuffer(_SymmetricSampling, HerReplayBuffer):
    """SB3's `HerReplayBuffer` plus demonstrations from the Minari dataset `demo_dataset`; each batch is
    half online, half demonstrations, both halves relabelled by HER (`n_sampled_goal`, strategy)."""

    demo_buffer_class: type[HerReplayBuffer] = HerReplayBuffer
    """the demonstrations' own buffer: a subclass that changes what a sample holds (n-step returns) sets it"""

    def __init__(self, buffer_size, observation_space, action_space, env, *, demo_dataset: str, **kwargs):
        super().__init__(buffer_size, observation_space, action_space, env, **kwargs)
        kwargs.pop("n_envs", None)
        # One row more than the demonstrations hold: filled exactly, SB3's HER buffer wraps its position to
        # 0 as the last episode ends, and an episode that also started at 0 (a single demonstration) is
        # measured as empty, so nothing could be sampled.
        demo_buffer = self.demo_buffer_class(
            _demo_transitions(demo_dataset) + 1, observation_space, action_space, env, n_envs=1, **kwargs
        )
        self._load_demos(demo_dataset, demo_buffer)


class DemoReplayBuffer(_SymmetricSampling, ReplayBuffer):
    """SB3's `ReplayBuffer` (vector observations, no HER) plus demonstrations; half of each batch each."""

    def __init__(self, buffer_size, observation_space, action_space, *, demo_dataset: str, **kwargs):
        super().__init__(buffer_size, observation_space, action_space, **kwargs)
        kwargs.pop("n_envs", None)
        demo_buffer = ReplayBuffer(
            _demo_transitions(demo_dataset), observation_space, action_space, n_envs=1, **kwargs
        )
        self._load_demos(demo_dataset, demo_buffer)
