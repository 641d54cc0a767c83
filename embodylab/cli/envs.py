"""`embodylab envs` and `embodylab info ID`: what the registered environments are."""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass

import gymnasium as gym

from embodylab.cli.common import EnvIdArgument, describe_space
from embodylab.core.control import CONTROL_MODES
from embodylab.envs.base import OBS_MODES
from embodylab.envs.registry import ALL_ENVS, entry, resolve_env_id
from embodylab.recording import print_table


@dataclass
class Envs:
    """List the registered environments with their action and (state) observation spaces."""

    def run(self) -> None:
        rows = []
        for e in ALL_ENVS:
            env = gym.make(e.id, disable_env_checker=True)
            rows.append(
                [e.id, e.description, describe_space(env.action_space), describe_space(env.observation_space)]
            )
            env.close()
        print_table(
            "embodylab environments", ["id", "description", "action space", "observation (state)"], rows
        )


@dataclass
class Info:
    """Describe one environment: success criterion, spaces per mode, objects, cameras, physics rates."""

    env_id: EnvIdArgument
    """env id, e.g. LabReach-v0 (the embodylab/ namespace is optional)"""

    def run(self) -> None:
        e = entry(resolve_env_id(self.env_id))
        env = gym.make(e.id, disable_env_checker=True)
        task = env.unwrapped
        cls = type(task)
        module_doc = inspect.cleandoc(sys.modules[cls.__module__].__doc__ or "")
        class_doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        timestep = task.model.opt.timestep
        objects = task.object_states()

        print(f"{e.id} — {e.description}\n")
        for doc in (module_doc, class_doc):
            if doc:
                print(doc + "\n")
        print(f"entry point        {e.entry_point}")
        print(f"max_episode_steps  {env.spec.max_episode_steps}")
        print(f"physics timestep   {timestep:g} s")
        print(f"frame_skip         {task.frame_skip}")
        print(f"control rate       {1.0 / (timestep * task.frame_skip):g} Hz")
        print(f"cameras            {', '.join(task.cameras)}")
        listed = ", ".join(f"{n} ({c})" for n, c in zip(objects.names, objects.categories, strict=True))
        print(f"objects            {listed or '(none)'}\n")
        env.close()

        rows = []
        for mode in OBS_MODES:
            with gym.make(e.id, obs_mode=mode, disable_env_checker=True) as probe:
                rows.append([mode, describe_space(probe.observation_space)])
        with gym.make(e.id, goal_conditioned=True, disable_env_checker=True) as probe:
            rows.append(["state, goal_conditioned", describe_space(probe.observation_space)])
        print_table("observation spaces (obs_mode)", ["obs_mode", "observation space"], rows)
        rows = []
        for mode in CONTROL_MODES:
            with gym.make(e.id, control_mode=mode, disable_env_checker=True) as probe:
                rows.append([mode, describe_space(probe.action_space)])
        print_table("action spaces (control_mode)", ["control_mode", "action space"], rows)
