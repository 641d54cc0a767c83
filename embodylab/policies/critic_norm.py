"""SAC policies whose critics put a LayerNorm after every hidden linear layer (before the activation).

RLPD (Ball et al. 2023, "Efficient online reinforcement learning with offline data") finds LayerNorm in
the critic the piece that keeps Q-values of actions outside the data (here: the demonstrations) from
being extrapolated upwards, which is what lets symmetric sampling with demonstrations and a higher
update-to-data ratio work. The actor keeps SB3's plain MLP. `Sac.critic_layer_norm` selects these
classes (`layer_norm_policy`).
"""

from __future__ import annotations

from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.sac.policies import MlpPolicy, MultiInputPolicy
from torch import nn


class _LayerNormCritic:
    """Mixin over an SB3 SAC policy: `make_critic` rebuilds each Q-network with LayerNorm."""

    def make_critic(self, features_extractor=None):
        critic = super().make_critic(features_extractor)  # type: ignore[misc]
        net_arch = self.critic_kwargs["net_arch"]  # type: ignore[attr-defined]
        activation = self.critic_kwargs["activation_fn"]  # type: ignore[attr-defined]
        for index, q_net in enumerate(critic.q_networks):
            layers = create_mlp(
                q_net[0].in_features, 1, net_arch, activation, post_linear_modules=[nn.LayerNorm]
            )
            q_net = nn.Sequential(*layers)
            critic.add_module(f"qf{index}", q_net)  # replaces the plain one under the same name
            critic.q_networks[index] = q_net
        return critic.to(self.device)  # type: ignore[attr-defined]


class LayerNormMlpPolicy(_LayerNormCritic, MlpPolicy):
    """SAC's `MlpPolicy` with LayerNorm critics."""


class LayerNormMultiInputPolicy(_LayerNormCritic, MultiInputPolicy):
    """SAC's `MultiInputPolicy` (dict observations, e.g. HER's) with LayerNorm critics."""


def layer_norm_policy(name: str) -> type:
    """The LayerNorm-critic class of SB3's SAC policy `name` ("MlpPolicy" or "MultiInputPolicy")."""
    classes = {"MlpPolicy": LayerNormMlpPolicy, "MultiInputPolicy": LayerNormMultiInputPolicy}
    if name not in classes:
        raise ValueError(f"no LayerNorm-critic variant of {name!r}; valid: {', '.join(classes)}")
    return classes[name]
