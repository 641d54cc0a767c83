"""The run's env and its SB3 algorithm, built from a `TrainConfig`: `make_env` and `make_model`.

Training (`rl.py`) and evaluation (`evaluation.py`) both build from here, so neither imports the other
for it. `make_model` picks SB3's class and replay buffer from the config: HER, demonstrations (symmetric
sampling, Q-filtered BC, IBRL), n-step returns and energy-based priorities.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import NStepReplayBuffer
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.her import HerReplayBuffer
from stable_baselines3.sac.policies import MlpPolicy as SACMlpPolicy
from stable_baselines3.sac.policies import MultiInputPolicy as SACMultiInputPolicy

from embodylab.envs.registry import make, resolve_env_id
from embodylab.policies.bc import DemoSAC
from embodylab.policies.config import (
    DEFAULT_BC_WEIGHT,
    SacDemos,
    TrainConfig,
    _Algorithm,
    _OffPolicy,
)
from embodylab.policies.critic_norm import layer_norm_policy
from embodylab.policies.demos import (
    DemoHerReplayBuffer,
    DemoReplayBuffer,
)
from embodylab.policies.energy_priority import DemoEnergyHerReplayBuffer, EnergyHerReplayBuffer
from embodylab.policies.exploration import with_random_actions
from embodylab.policies.ibrl import ibrl_policy
from embodylab.policies.normalization import RunningNormExtractor
from embodylab.policies.nstep_her import DemoNStepHerReplayBuffer, NStepHerReplayBuffer

TD3_ACTION_NOISE = 0.1
"""std of TD3's Gaussian exploration noise, in units of the [-1, 1] action range."""


def make_env(config: TrainConfig, render: bool = False) -> gym.Env:
    """The run's env: goal-conditioned with HER, with the run's reward type; rendering for videos."""
    return make(
        resolve_env_id(config.env),
        goal_conditioned=config.her is not None,
        reward_type=config.goal_reward_type,
        render_mode="rgb_array" if render else None,
    )


def _preset_id(env_id: str) -> str:
    """The full embodylab id of `env_id` for the task presets; another library's id (e.g. Fetch's, handed
    to `make_model` with its env for a cross-check) as it is, taking the default preset."""
    try:
        return resolve_env_id(env_id)
    except ValueError:
        return env_id


def _policy_kwargs(a: _Algorithm, tcp_slice: tuple[int, int] | None = None) -> dict:
    kwargs: dict = {"net_arch": list(a.net_arch)}
    if a.normalize_obs:
        kwargs["features_extractor_class"] = RunningNormExtractor
        kwargs["features_extractor_kwargs"] = {"relative_goals": a.relative_goals}
        if tcp_slice is not None:
            kwargs["features_extractor_kwargs"]["tcp_slice"] = tcp_slice
    return kwargs


def make_model(
    config: TrainConfig,
    env: gym.Env,
    with_demos: bool = True,
    tcp_slice: tuple[int, int] | None = None,
) -> BaseAlgorithm:
    """The SB3 algorithm of `config` on `env`, untrained. `with_demos=False` leaves the demonstrations out
    of the replay buffer (evaluation needs only the networks). `tcp_slice`: where the gripper position
    lies in another library's observation vector, for the relative goal features (embodylab's envs:
    leave None; Fetch's: (0, 3)).

    Raises:
        ConfigError: `config` cannot run (`TrainConfig.validate`), e.g. a value out of its range."""
    config.validate()
    a = config.algo.resolved(_preset_id(config.env))
    her, demos = config.her, config.demos
    policy = "MultiInputPolicy" if isinstance(env.observation_space, gym.spaces.Dict) else "MlpPolicy"
    common = {
        "learning_rate": a.learning_rate,
        "gamma": a.gamma,
        "policy_kwargs": _policy_kwargs(a, tcp_slice),
        "seed": config.seed,
        "verbose": 0,
    }
    if not isinstance(a, _OffPolicy):
        return PPO(policy, env, n_steps=a.n_steps, batch_size=min(a.batch_size, a.n_steps), **common)

    buffer_class, buffer_kwargs = None, {}
    with_demos = with_demos and demos is not None and demos.dataset is not None
    if her:
        buffer_class = HerReplayBuffer
        buffer_kwargs = {
            "n_sampled_goal": her.n_sampled_goal,
            "goal_selection_strategy": her.goal_selection_strategy,
        }
    if with_demos:
        buffer_class = DemoHerReplayBuffer if her else DemoReplayBuffer
        buffer_kwargs["demo_dataset"] = demos.dataset
    if a.n_step_return > 1:  # TrainConfig.validate leaves HER (with or without demos) or plain replay
        buffer_class = {
            HerReplayBuffer: NStepHerReplayBuffer,
            DemoHerReplayBuffer: DemoNStepHerReplayBuffer,
            None: NStepReplayBuffer,
        }[buffer_class]
        # SB3's own n-step buffer spells the count n_steps.
        count = "n_steps" if buffer_class is NStepReplayBuffer else "n_step"
        buffer_kwargs |= {count: a.n_step_return, "gamma": a.gamma}
    if her and her.energy_priority:
        buffer_class = (
            DemoEnergyHerReplayBuffer if buffer_class is DemoHerReplayBuffer else EnergyHerReplayBuffer
        )
    off_policy = {
        "batch_size": a.batch_size,
        "buffer_size": a.buffer_size or config.steps,
        "learning_starts": a.learning_starts,
        "train_freq": (a.train_freq, "step"),
        "gradient_steps": a.gradient_steps,
        "tau": a.tau,
        "replay_buffer_class": buffer_class,
        "replay_buffer_kwargs": buffer_kwargs,
        **common,
    }
    exploring = lambda algorithm: algorithm  # noqa: E731 - without random actions, SB3's own classes
    if a.random_action_prob:
        off_policy["random_action_prob"] = a.random_action_prob
        exploring = with_random_actions

    if getattr(a, "ent_coef", None) is not None:  # SAC and TQC
        off_policy["ent_coef"] = a.ent_coef
    if a.name == "sac":
        ibrl = isinstance(demos, SacDemos) and demos.ibrl
        if a.critic_layer_norm:
            policy = layer_norm_policy(policy)
        if ibrl:
            # Also without the demonstrations (evaluation): the fitted proposal comes with the weights.
            policy = ibrl_policy(_sac_policy_class(policy))
            off_policy["policy_kwargs"] = {**off_policy["policy_kwargs"], "bc_hidden": demos.ibrl_bc_hidden}
        bc_weight = 0.0
        if with_demos:
            bc_weight = demos.bc_weight if demos.bc_weight is not None else DEFAULT_BC_WEIGHT
        bc_q_alpha = demos.bc_q_alpha if isinstance(demos, SacDemos) else None
        if bc_weight > 0 or a.action_l2 or ibrl:
            extra = {"bc_weight": bc_weight, "bc_q_alpha": bc_q_alpha, "action_l2": a.action_l2}
            return exploring(DemoSAC)(policy, env, **extra, **off_policy)
        return exploring(SAC)(policy, env, **off_policy)
    if a.name == "td3":
        n_actions = env.action_space.shape[0]
        noise = NormalActionNoise(np.zeros(n_actions), np.full(n_actions, TD3_ACTION_NOISE))
        return exploring(TD3)(policy, env, action_noise=noise, **off_policy)
    from sb3_contrib import TQC

    return exploring(TQC)(policy, env, **off_policy)


def _sac_policy_class(policy: str | type) -> type:
    if isinstance(policy, type):
        return policy
    return {"MlpPolicy": SACMlpPolicy, "MultiInputPolicy": SACMultiInputPolicy}[policy]
