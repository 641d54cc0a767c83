"""Uniformly random actions mixed into an off-policy algorithm's own, as DDPG+HER explores.

DDPG+HER (Andrychowicz et al. 2017; Plappert et al. 2018) takes a uniformly random action with
probability 0.3 at every training step, besides Gaussian noise on the policy's. SAC's learned entropy
bonus alone does not keep exploring on sparse-reward object tasks: on LabPush its coefficient fell from 1
to 0.002 within 10k steps and the policy stopped touching the cube, so HER had no moved cube to relabel.

`with_random_actions(SAC)` is SAC with that rule: during training an env's action is, with probability
`random_action_prob`, replaced by one drawn uniformly from the action space, and the replay buffer
stores the action that was executed (the algorithm is off-policy, so the executed action is the one to
learn from). Evaluation and `predict` are untouched. The draws come from a generator seeded with the
run's seed: the same seed gives the same run.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm


class _RandomActions:
    """Mixin over an SB3 `OffPolicyAlgorithm` (see the module docstring)."""

    def __init__(self, *args, random_action_prob: float = 0.0, **kwargs):
        if not 0.0 <= random_action_prob <= 1.0:
            raise ValueError(f"random_action_prob must lie in [0, 1]; got {random_action_prob}")
        self.random_action_prob = float(random_action_prob)
        super().__init__(*args, **kwargs)
        self._exploration_rng = np.random.default_rng(self.seed)

    def _sample_action(self, learning_starts, action_noise=None, n_envs: int = 1):
        action, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)
        replace = self._exploration_rng.random(n_envs) < self.random_action_prob
        if replace.any():
            # buffer actions live in the policy's [-1, 1] space; the env's are unscaled from them
            random = self._exploration_rng.uniform(
                -1.0, 1.0, size=(int(replace.sum()), *buffer_action.shape[1:])
            )
            buffer_action = buffer_action.copy()
            buffer_action[replace] = random
            action = action.copy()
            action[replace] = self.policy.unscale_action(random)
        return action, buffer_action


@cache
def with_random_actions(algorithm: type[OffPolicyAlgorithm]) -> type[OffPolicyAlgorithm]:
    """`algorithm` (SAC, TD3, TQC or a subclass) taking `random_action_prob=p` (see the module docstring)."""
    if not issubclass(algorithm, OffPolicyAlgorithm):
        raise TypeError(f"random exploration needs an off-policy algorithm; got {algorithm.__name__}")
    return type(algorithm.__name__, (_RandomActions, algorithm), {"__module__": __name__})
