"""Datasets written by embodylab say what they are: a demonstration dataset recovers its env with Minari's
`recover_environment()`; a world-model dataset says in its description why it cannot."""

import gymnasium as gym
import numpy as np
import pytest

import embodylab  # noqa: F401

minari = pytest.importorskip("minari")


def test_a_demonstration_dataset_recovers_its_environment(tmp_path):
    from embodylab.policies.demos import record_demos

    env = gym.make("embodylab/LabReach-v0", goal_conditioned=True)
    dataset = minari.MinariDataset(record_demos(env, 1, tmp_path))
    recovered = dataset.recover_environment()
    assert recovered.spec.id == "embodylab/LabReach-v0"
    assert recovered.observation_space == env.observation_space
    episode = next(dataset.iterate_episodes())
    first, _ = recovered.reset(seed=0)  # record_demos plays seeds 0, 1, ...; the first is 0
    np.testing.assert_array_equal(first["observation"], episode.observations["observation"][0])


@pytest.mark.parametrize("policy", ["expert", "noisy-expert"])
def test_a_world_model_dataset_says_why_its_env_cannot_be_recovered(tmp_path, policy):
    from embodylab.world_models.data import NOT_RECOVERABLE, collect

    dataset = minari.MinariDataset(collect("LabPush-v0", policy, 1, tmp_path, noise=0.3, progress=False))
    description = dataset.storage.metadata["description"]
    assert NOT_RECOVERABLE in description
    assert ("noise" in description) == (policy == "noisy-expert")
    with pytest.raises(ValueError):
        dataset.recover_environment()
