"""World-model datasets: collect object-centric rollouts as Minari datasets and load them as padded tensors.

Each step of a dataset holds the object-centric state of `env.unwrapped.object_states()` padded to
`MAX_OBJECTS` objects (features float32 [MAX_OBJECTS, 16] in the world frame, category ids, a mask of
the real objects), the robot's proprioception (float32 [21], see
`PandaArm.proprio`) and the task goal (world frame, metres), as a Minari observation dict; the action,
the reward and `infos["success"]` per step. Scenes of different object counts share one dataset: padding
and the mask make them one tensor.

Categories are open: ids 0, 1, 2 are `CATEGORIES` (what the world models embed), and any other category
(a new task's objects) gets the next id in the order a dataset first meets it. The dataset keeps its
names in `categories.json` beside its `data/` folder, and `load_dataset` maps the ids of several datasets
into one vocabulary (`WorldModelData.category_names`). A model refuses categories it does not embed
(`check_categories`) instead of guessing.

    collect("embodylab/LabClutter-v0", "noisy-expert", 100, "runs/data/clutter", n_objects=(1, 2, 3))
    data = load_dataset("runs/data/clutter")     # WorldModelData, numpy arrays [E, T(+1), ...]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm import tqdm

from embodylab.core.control import PandaArm
from embodylab.datasets import write_local_dataset
from embodylab.rollout import Transition, play_episode

MAX_OBJECTS = 8
FEATURE_DIM = 16
"""position 3, quaternion (w, x, y, z) 4, linear velocity 3, angular velocity 3, half-extents 3."""
CATEGORIES = ("cube", "target_cube", "tube")
"""object categories a world model embeds; the id of a category is its index here. Other categories get
ids after these (`CategoryVocabulary`)."""
CATEGORIES_FILE = "categories.json"
"""beside a dataset's `data/` folder: the names of its category ids, in id order"""
POLICIES = ("random", "expert", "noisy-expert")
OBSERVATION_KEYS = ("object_features", "object_categories", "object_mask", "proprio", "goal")
INFO_KEYS = ("success",)


class WorldModelDatasetError(ValueError):
    """A world-model dataset that is missing, unreadable or lacks fields; the message names the path."""


class CategoryVocabulary:
    """Category names -> int64 ids: `CATEGORIES` first (ids 0..2), then every other name in the order it is
    first seen, so that a new task's object category never breaks collection."""

    def __init__(self, names: Sequence[str] = CATEGORIES):
        self.names: list[str] = list(names)

    def ids(self, categories: Sequence[str]) -> np.ndarray:
        for name in categories:
            if name not in self.names:
                self.names.append(name)
        return np.array([self.names.index(c) for c in categories], dtype=np.int64)


def category_ids(categories: Sequence[str], vocabulary: CategoryVocabulary | None = None) -> np.ndarray:
    """int64 ids of `categories` in `vocabulary` (default: a new one, `CATEGORIES` first), which grows by
    the names it has not seen."""
    return (vocabulary or CategoryVocabulary()).ids(categories)


def check_categories(data: WorldModelData, embedded: int = len(CATEGORIES)) -> None:
    """Raises ValueError when `data`'s real objects have category ids a model with `embedded` category
    embeddings cannot take; the message names the categories."""
    used = np.unique(data.categories[data.mask])
    extra = [data.category_names[i] for i in used if i >= embedded]
    if extra:
        raise ValueError(
            f"the dataset holds object categories {extra} that the world models do not embed; they embed "
            f"{', '.join(data.category_names[:embedded])}"
        )


def observation_space(goal_dim: int, n_categories: int = len(CATEGORIES)) -> spaces.Dict:
    """The Minari observation space of world-model datasets (objects padded to `MAX_OBJECTS`)."""
    inf = np.inf
    return spaces.Dict(
        {
            "object_features": spaces.Box(-inf, inf, (MAX_OBJECTS, FEATURE_DIM), np.float32),
            "object_categories": spaces.Box(0, n_categories - 1, (MAX_OBJECTS,), np.int64),
            "object_mask": spaces.Box(0.0, 1.0, (MAX_OBJECTS,), np.float32),
            "proprio": spaces.Box(-inf, inf, (PandaArm.PROPRIO_DIM,), np.float32),
            "goal": spaces.Box(-inf, inf, (goal_dim,), np.float32),
        }
    )


def object_centric_observation(
    env: gym.Env, vocabulary: CategoryVocabulary | None = None
) -> dict[str, np.ndarray]:
    """The object-centric state of `env` now, padded to `MAX_OBJECTS` (one observation of the dataset);
    category ids from `vocabulary` (default: `CATEGORIES`, then the others in order of appearance)."""
    task = env.unwrapped
    states = task.object_states()
    n = len(states.names)
    if n > MAX_OBJECTS:
        raise ValueError(
            f"{type(task).__name__} has {n} objects; world-model datasets hold at most {MAX_OBJECTS}"
        )
    features = np.zeros((MAX_OBJECTS, FEATURE_DIM), np.float32)
    features[:n] = states.features
    categories = np.zeros(MAX_OBJECTS, np.int64)
    categories[:n] = category_ids(states.categories, vocabulary)
    mask = np.zeros(MAX_OBJECTS, np.float32)
    mask[:n] = 1.0
    proprio = task.arm.proprio(np.empty(PandaArm.PROPRIO_DIM, np.float32))
    goal = np.asarray(task.goal, np.float32).copy()
    return {
        "object_features": features,
        "object_categories": categories,
        "object_mask": mask,
        "proprio": proprio,
        "goal": goal,
    }


class _Policy:
    """random, expert, or noisy-expert (the expert's action plus Gaussian noise of std `noise`, clipped)."""

    def __init__(self, name: str, env: gym.Env, noise: float, rng: np.random.Generator):
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}; valid policies: {', '.join(POLICIES)}")
        from embodylab.skills.experts import make_expert

        self.name, self.env, self.noise, self.rng = name, env, noise, rng
        self.expert = None if name == "random" else make_expert(env)

    def reset(self, observation) -> None:
        if self.expert is not None:
            self.expert.reset()

    def __call__(self, observation) -> np.ndarray:
        shape = self.env.action_space.shape
        if self.expert is None:
            return self.rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        action = self.expert.act()
        if self.name == "noisy-expert":
            action = np.clip(action + self.rng.normal(0.0, self.noise, shape), -1.0, 1.0)
        return action.astype(np.float32)


def collect(
    env_id: str,
    policy: str,
    episodes: int,
    out: str | Path,
    *,
    seed: int = 0,
    noise: float = 0.3,
    n_objects: Sequence[int] = (),
    name: str | None = None,
    progress: bool = True,
) -> Path:
    """Plays `episodes` episodes of `env_id` with `policy` (seeds `seed`, `seed + 1`, ...) and writes the
    Minari dataset `embodylab/<Task>/<name>-v0` under `out`. Returns the dataset's data directory.

    `n_objects` (for tasks with an object-count knob, e.g. LabClutter) cycles the scene's object count over
    the episodes; `noise` is the action-noise std of `noisy-expert` (actions lie in [-1, 1])."""
    from embodylab.envs.registry import entry, make

    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    full_id = entry(env_id).id
    counts = list(n_objects) or [None]
    try:
        envs = {n: make(full_id) if n is None else make(full_id, n_objects=n) for n in counts}
    except TypeError as err:  # the task's constructor has no `n_objects`
        raise ValueError(
            f"{full_id} has no object-count knob (n_objects={list(counts)}): {err}; LabClutter-v0 has one"
        ) from err
    rng = np.random.default_rng(seed)
    policies = {n: _Policy(policy, env, noise, rng) for n, env in envs.items()}
    max_steps = next(iter(envs.values())).spec.max_episode_steps
    recorder = EpisodeRecorder()
    bar = tqdm(total=episodes * max_steps, desc=f"collect {full_id}", unit="step", disable=not progress)
    for episode in range(episodes):
        count = counts[episode % len(counts)]
        env = envs[count]

        def record(step: Transition, env=env) -> None:
            recorder.add(env, step.action, step.reward, step.terminated, step.truncated, step.info)
            bar.update()

        play_episode(
            env,
            policies[count],
            seed=seed + episode,
            on_reset=lambda _obs, _info, env=env, s=seed + episode: recorder.start(env, s),
            on_step=record,
        )
        bar.update(max_steps - recorder.steps)
        recorder.finish()
    bar.close()
    env = next(iter(envs.values()))
    task = full_id.split("/")[-1].rsplit("-v", 1)[0]
    path = recorder.write(
        out,
        f"embodylab/{task}/{name or policy}-v0",
        env,
        algorithm_name=f"embodylab {policy}",
        description=world_model_dataset_description(
            f"{episodes} {policy} episodes of {full_id}", counts, noise if policy == "noisy-expert" else None
        ),
    )
    for each in envs.values():
        each.close()
    return path


NOT_RECOVERABLE = (
    "Minari's recover_environment() does not apply: the observations are the object-centric state "
    "(object_states() padded to 8 objects, proprioception, goal), not the env's own observations; "
    "make the env with embodylab.make(ID) (and n_objects=N for LabClutter) to act in it."
)
"""Why a world-model dataset carries no env spec, said in every such dataset's description."""


def world_model_dataset_description(what: str, counts: list, noise: float | None) -> str:
    """The description of a world-model dataset: what was played, the object counts, the action noise
    (only where a noisy policy added some) and why the env cannot be recovered from it."""
    details = [] if counts == [None] else [f"object counts {counts}"]
    if noise is not None:
        details.append(f"action noise std {noise}")
    shown = f" ({', '.join(details)})" if details else ""
    return f"{what}{shown}: object-centric world-model data (embodylab.world_models.data). {NOT_RECOVERABLE}"


class EpisodeRecorder:
    """Records episodes of any actor as world-model data: `start(env, seed)` after `env.reset`, `add(...)`
    after every `env.step`, `finish()` at the episode's end, and `write(...)` once for a Minari dataset.

    `collect` records its scripted policies with it, and `run_planner(record=...)` the planner's own
    episodes (on-policy data for a DAgger round: the states the planner visits are the ones the model
    must predict)."""

    def __init__(self) -> None:
        self.buffers: list = []
        self.vocabulary = CategoryVocabulary()
        self._episode: dict | None = None

    @property
    def steps(self) -> int:
        """Steps of the episode being recorded."""
        return len(self._episode["actions"]) if self._episode is not None else 0

    def start(self, env: gym.Env, seed: int | None) -> None:
        self._episode = {
            "seed": seed,
            "observations": [object_centric_observation(env, self.vocabulary)],
            "actions": [],
            "rewards": [],
            "terminations": [],
            "truncations": [],
            "successes": [False],
        }

    def add(self, env: gym.Env, action, reward: float, terminated: bool, truncated: bool, info: dict) -> None:
        if self._episode is None:
            raise RuntimeError("EpisodeRecorder.add before start: call start(env, seed) after env.reset")
        episode = self._episode
        episode["observations"].append(object_centric_observation(env, self.vocabulary))
        episode["actions"].append(np.asarray(action, np.float32))
        episode["rewards"].append(float(reward))
        episode["terminations"].append(bool(terminated))
        episode["truncations"].append(bool(truncated))
        episode["successes"].append(bool(info["is_success"]))

    def finish(self) -> None:
        from minari.data_collector import EpisodeBuffer

        episode, self._episode = self._episode, None
        if episode is None or not episode["actions"]:
            return
        observations = episode["observations"]
        self.buffers.append(
            EpisodeBuffer(
                id=len(self.buffers),
                seed=episode["seed"],
                observations={k: np.stack([o[k] for o in observations]) for k in OBSERVATION_KEYS},
                actions=np.stack(episode["actions"]),
                rewards=episode["rewards"],
                terminations=episode["terminations"],
                truncations=episode["truncations"],
                infos={"success": np.array(episode["successes"])},
            )
        )

    def write(self, out: str | Path, dataset_id: str, env: gym.Env, **metadata) -> Path:
        """Writes the finished episodes as the Minari dataset `dataset_id` under `out`; returns its data
        directory. `metadata` (algorithm_name, description) goes to Minari."""
        if not self.buffers:
            raise ValueError("no finished episodes to write")
        data_path = write_local_dataset(
            out,
            dataset_id,
            self.buffers,
            action_space=env.action_space,
            observation_space=observation_space(env.unwrapped.goal.size, len(self.vocabulary.names)),
            **metadata,
        )
        (data_path.parent / CATEGORIES_FILE).write_text(json.dumps(self.vocabulary.names) + "\n")
        return data_path


@dataclass
class WorldModelData:
    """Episodes padded to one length `T` (steps) and `MAX_OBJECTS` objects, numpy arrays.

    features float32 [E, T+1, MAX_OBJECTS, 16]; categories int64 [E, MAX_OBJECTS]; mask bool
    [E, MAX_OBJECTS]; proprio float32 [E, T+1, 21]; goal float32 [E, T+1, G]; actions float32 [E, T, A];
    rewards float32 [E, T]; success float32 [E, T] (after each step); lengths int64 [E] (real steps).
    """

    features: np.ndarray
    categories: np.ndarray
    mask: np.ndarray
    proprio: np.ndarray
    goal: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    lengths: np.ndarray
    category_names: tuple[str, ...] = CATEGORIES
    """the name of every category id, in id order (`CATEGORIES` first)"""

    ARRAYS: ClassVar[tuple[str, ...]] = (
        "features", "categories", "mask", "proprio", "goal", "actions", "rewards", "success", "lengths",
    )  # fmt: skip

    def __len__(self) -> int:
        return len(self.lengths)

    def subset(self, index) -> WorldModelData:
        """The episodes at `index` (an array of episode indices or a boolean mask)."""
        return WorldModelData(
            **{k: getattr(self, k)[index] for k in self.ARRAYS}, category_names=self.category_names
        )

    @staticmethod
    def concatenate(parts: Sequence[WorldModelData]) -> WorldModelData:
        """One dataset of several with the same step count `T`."""
        lengths = {p.actions.shape[1] for p in parts}
        if len(lengths) != 1:
            raise ValueError(
                f"datasets of different episode lengths {sorted(lengths)} cannot be concatenated"
            )
        names = {p.category_names for p in parts}
        if len(names) != 1:
            raise ValueError(
                f"datasets of different category vocabularies {sorted(names)} cannot be concatenated"
            )
        return WorldModelData(
            **{k: np.concatenate([getattr(p, k) for p in parts]) for k in WorldModelData.ARRAYS},
            category_names=names.pop(),
        )

    @property
    def n_objects(self) -> np.ndarray:
        """int [E]: real objects per episode."""
        return self.mask.sum(axis=1)


def find_datasets(path: str | Path) -> list[Path]:
    """The Minari data directories at `path`: the data directory itself, a dataset directory, or every
    dataset under a root directory."""
    path = Path(path)
    if (path / "metadata.json").is_file():
        return [path]
    if (path / "data" / "metadata.json").is_file():
        return [path / "data"]
    found = sorted(p.parent for p in path.glob("**/data/metadata.json")) if path.is_dir() else []
    if not found:
        raise WorldModelDatasetError(f"no Minari dataset at {path} (no data/metadata.json under it)")
    return found


def load_dataset(path: str | Path) -> WorldModelData:
    """Reads the world-model dataset(s) at `path` (see `find_datasets`: several under one root are read as
    one) into padded numpy arrays.

    Raises:
        WorldModelDatasetError: no dataset, an unreadable one, or one without the object-centric fields
            (e.g. an expert-demo dataset of `embodylab train ... demos --record N`); the message names the missing ones.
    """
    from minari import MinariDataset

    raw, vocabulary, remaps = [], CategoryVocabulary(), []
    for data_path in find_datasets(path):
        try:
            episodes = list(MinariDataset(data_path).iterate_episodes())
        except Exception as err:  # h5py and Minari raise many kinds (KeyError, OSError, ...) for broken files
            raise WorldModelDatasetError(f"cannot read the Minari dataset at {data_path}: {err!r}") from err
        if not episodes:
            raise WorldModelDatasetError(f"the Minari dataset at {data_path} holds no episodes")
        _check_fields(data_path, episodes)
        names_file = data_path.parent / CATEGORIES_FILE
        names = json.loads(names_file.read_text()) if names_file.is_file() else list(CATEGORIES)
        remaps += [vocabulary.ids(names)] * len(episodes)  # this dataset's ids -> the merged vocabulary's
        raw += episodes
    return _pad_episodes(raw, remaps, tuple(vocabulary.names))


def _check_fields(data_path: Path, episodes: list) -> None:
    for episode in episodes:
        observations = episode.observations if isinstance(episode.observations, dict) else {}
        infos = episode.infos or {}
        missing = [k for k in OBSERVATION_KEYS if k not in observations]
        missing += [f"infos.{k}" for k in INFO_KEYS if k not in infos]
        if missing:
            raise WorldModelDatasetError(
                f"{data_path}: episode {episode.id} lacks the world-model fields {missing} "
                f"(a world-model dataset has observations {list(OBSERVATION_KEYS)} and infos {list(INFO_KEYS)}; "
                "write one with `embodylab collect`)"
            )


def _pad_episodes(raw: list, remaps: list[np.ndarray], category_names: tuple[str, ...]) -> WorldModelData:
    steps = max(len(e.actions) for e in raw)

    def padded(values: np.ndarray, length: int) -> np.ndarray:
        # Pad the time axis by repeating the last entry (masked out of training by `lengths`).
        values = np.asarray(values)
        if len(values) == length:
            return values
        return np.concatenate([values, np.repeat(values[-1:], length - len(values), axis=0)])

    obs = {k: np.stack([padded(e.observations[k], steps + 1) for e in raw]) for k in OBSERVATION_KEYS}
    success = np.stack([padded(np.asarray(e.infos["success"], np.float32)[1:], steps) for e in raw])
    return WorldModelData(
        features=obs["object_features"].astype(np.float32),
        categories=np.stack(
            [
                remap[ids]
                for remap, ids in zip(remaps, obs["object_categories"][:, 0].astype(np.int64), strict=True)
            ]
        ),
        mask=obs["object_mask"][:, 0] > 0.5,
        proprio=obs["proprio"].astype(np.float32),
        goal=obs["goal"].astype(np.float32),
        actions=np.stack([padded(e.actions, steps) for e in raw]).astype(np.float32),
        rewards=np.stack([padded(np.asarray(e.rewards, np.float32), steps) for e in raw]),
        success=success,
        lengths=np.array([len(e.actions) for e in raw], dtype=np.int64),
        category_names=category_names,
    )
