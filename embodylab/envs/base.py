"""`EmbodiedEnv`: the one Gymnasium base class every single-agent embodylab task derives from.

The base owns stepping, control modes, observation modes, rendering, seeding and bad-input handling;
a task owns its scene, its reset distribution, its goal and its success test. A task overrides:

- `_load_scene() -> SceneSpec`               called once, at construction;
- `_initialize_episode()`                   place objects and draw `self.goal` from `self.np_random`;
                                            it may read `self._episode_options`, the episode's
                                            `reset(options=...)`, whose keys the task names in
                                            `reset_option_keys` (any other key raises `ValueError`);
- `_achieved_goal() -> np.ndarray`          the part of the state the goal is about;
- `_goal_distance(achieved, desired)`       vectorised over leading axes (default: Euclidean);
- `_goal_reached(achieved, desired)`        vectorised success test (default: distance < threshold);
- `_shaping_reward() -> float`              optional extra dense shaping when not goal-conditioned.

Actions are normalised to [-1, 1] with exactly the action space's shape (a batched-looking `(1, n)` or
`(n, 1)` raises `ValueError`, as in Gymnasium's MuJoCo envs); entries outside are clipped (never rejected),
NaN or ±inf entries raise `ValueError`. If the physics diverges, the episode ends with `truncated=True` and
`info["physics_error"]`, and the last finite observation is returned.

Goal-conditioned envs, and only they, have `compute_reward` (SB3 and Gymnasium-Robotics take any env with
one for a goal env): `goal_conditioned=True` makes the instance the task's `GoalConditioned` subclass
(`LabPushEnv.GoalConditioned`, made for every task class, with the task's name), which adds
`GoalConditionedEnv.compute_reward`; its step reward is `compute_reward` of the observed goals.

Envs copy (`copy.deepcopy`) and pickle: the copy steps exactly as the original from there on. Renderers and
the viewer are not copied (the copy makes its own when it renders); objects that keep views into MjData
(`MujocoScene`, `PandaArm`) make them anew on the copy's MjData.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from embodylab.core.control import CONTROL_MODES, PandaArm
from embodylab.core.mujoco_backend import MujocoScene
from embodylab.core.scene import CONTROL_HZ, OBJECT_FEATURE_DIM, ObjectStates, SceneSpec
from embodylab.envs.registry import description_of

OBS_MODES = ("state", "rgb", "depth", "rgbd", "segmentation", "pointcloud")
REWARD_TYPES = ("dense", "sparse")
# MuJoCo checks qpos, qvel and qacc for NaN/inf/overflow every step; when one fails it resets the state
# and counts a warning, so these counters are how a diverged simulation shows.
_DIVERGENCE_WARNINGS = range(int(mujoco.mjtWarning.mjWARN_BADQPOS), int(mujoco.mjtWarning.mjWARN_BADCTRL) + 1)
_DIVERGENCE_SLICE = slice(_DIVERGENCE_WARNINGS.start, _DIVERGENCE_WARNINGS.stop)


def _check_choice(kind: str, value: Any, valid: tuple) -> None:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid {kind}s: {', '.join(map(repr, valid))}")


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class EmbodiedEnv(gym.Env):
    """Base class of the single-agent embodylab environments (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": CONTROL_HZ}
    success_threshold: float = 0.05
    """metres, for the default `_goal_reached`."""
    cameras: tuple[str, ...] = ("front", "side", "wrist")
    proprio_dim: int = PandaArm.PROPRIO_DIM
    """length of the proprioceptive part of the state (see `_proprio`)"""
    reset_option_keys: tuple[str, ...] = ()
    """keys of `reset(options=...)` the task's `_initialize_episode` understands (task variants)."""
    tcp_bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """(low, high) world-frame box (metres) that ee_delta_pos steps keep the tool centre point in; None:
    unbounded (see `PandaArm.set_tcp_bounds`)."""
    GoalConditioned: type[EmbodiedEnv]
    """this task with `compute_reward`: the class of its goal-conditioned instances (made per subclass)"""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not issubclass(cls, GoalConditionedEnv):
            # Named as the task (messages and tools read the name); pickle finds it at its qualname.
            cls.GoalConditioned = type(
                cls.__name__,
                (GoalConditionedEnv, cls),
                {"__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.GoalConditioned"},
            )

    @property
    def description(self) -> str:
        """One line on what the task asks, from its registry entry (the one place task descriptions live:
        `embodylab envs` and `embodylab info` show the same)."""
        return description_of(type(self))

    def __init__(
        self,
        obs_mode: str = "state",
        control_mode: str = "ee_delta_pos",
        render_mode: str | None = None,
        goal_conditioned: bool = False,
        reward_type: str = "dense",
        image_size: int = 64,
        camera: str = "front",
        render_size: int = 256,
    ):
        _check_choice("obs_mode", obs_mode, OBS_MODES)
        _check_choice("control_mode", control_mode, CONTROL_MODES)
        _check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        _check_choice("reward_type", reward_type, REWARD_TYPES)
        _check_choice("camera", camera, self.cameras)
        if goal_conditioned and not isinstance(self, GoalConditionedEnv):
            # Chosen here rather than in __new__, where the arguments are not bound yet; the classes differ
            # in methods only.
            self.__class__ = type(self).GoalConditioned
        if not 8 <= int(image_size) <= 1024 or not 8 <= int(render_size) <= 1024:
            raise ValueError(
                f"image_size and render_size must lie in [8, 1024]; got {image_size}, {render_size}"
            )
        if render_mode == "human" and not has_display():
            raise RuntimeError(
                "render_mode='human' opens MuJoCo's viewer and needs a display, but neither DISPLAY nor "
                "WAYLAND_DISPLAY is set. Use render_mode='rgb_array' (offscreen) on a headless machine."
            )
        if not has_display():
            # This instance cannot open a viewer; say so to tools that try every declared mode (check_env).
            self.metadata = {**self.metadata, "render_modes": ["rgb_array"]}
        self.obs_mode, self.control_mode, self.render_mode = obs_mode, control_mode, render_mode
        self.goal_conditioned, self.reward_type = isinstance(self, GoalConditionedEnv), reward_type
        self.image_size, self.camera, self.render_size = int(image_size), camera, int(render_size)

        self._success_is_distance_threshold = type(self)._goal_reached is EmbodiedEnv._goal_reached
        self.sim = MujocoScene(self._load_scene())
        self.model, self.data = self.sim.model, self.sim.data
        self.frame_skip = round(1.0 / (CONTROL_HZ * self.model.opt.timestep))
        self._step_duration = self.frame_skip * self.model.opt.timestep
        self._min_step_advance = self._step_duration - 0.5 * self.model.opt.timestep
        mount = self.sim.spec_description.robot
        self.arm = PandaArm(self.model, self.data, self.sim.robot_names, mount.home_qpos)
        if self.tcp_bounds is not None:
            self.arm.set_tcp_bounds(*self.tcp_bounds)
        start_posture = self._start_posture()
        if start_posture is not None:
            self.arm.set_home(start_posture)
        self.goal = np.zeros(0)
        self.np_random  # noqa: B018 - seeds the generator so that tasks can draw goals before reset
        self._episode_options: dict[str, Any] = {}
        self._init_episode_state()

        n_arm = 3 if control_mode == "ee_delta_pos" else 7
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n_arm + 1,), dtype=np.float32)
        self._action_shape = self.action_space.shape
        self._features_size = len(self.sim.object_names) * OBJECT_FEATURE_DIM
        self.observation_space = self._make_observation_space()
        self._obs_renderer = None
        self._frame_renderer = None
        self._viewer = None
        self._last_obs = None

    # ---- task hooks ---------------------------------------------------------------------------------
    def _load_scene(self) -> SceneSpec:
        raise NotImplementedError

    def _initialize_episode(self) -> None:
        raise NotImplementedError

    def _achieved_goal(self) -> np.ndarray:
        raise NotImplementedError

    def _goal_distance(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        if achieved.ndim == 1:  # one goal, every step: the scalar path is several times faster
            return self._distance(achieved, desired)
        return np.linalg.norm(achieved - desired, axis=-1)

    def _goal_reached(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        return self._goal_distance(achieved, desired) < self.success_threshold

    def _shaping_reward(self) -> float:
        return 0.0

    def _start_posture(self) -> np.ndarray | None:
        """The arm's joint angles at the start of every episode; None: the robot mount's home posture."""
        return None

    @staticmethod
    def _distance(a: np.ndarray, b: np.ndarray) -> float:
        """Euclidean distance of two 3-vectors (metres); the scalar path shaping rewards run every step."""
        return math.dist(a.tolist(), b.tolist())

    def _goal_marker_position(self) -> np.ndarray | None:
        return self.goal[:3] if self.goal.size >= 3 else None

    def _init_episode_state(self) -> None:
        """Draw one goal so that the observation space knows the goal's size."""
        self._reset_simulation()

    # ---- Gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._episode_options = self._validate_reset_options(options)
        self._reset_simulation()
        obs = self._observation()
        self._last_obs = obs
        return obs, self._info(self._achieved_goal())

    def _reset_simulation(self) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self.arm.reset()
        self._initialize_episode()
        marker = self._goal_marker_position()
        if marker is not None:
            self.sim.set_goal_marker(marker)
        mujoco.mj_forward(self.model, self.data)

    # ---- state snapshots ----------------------------------------------------------------------------
    _STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION

    def get_state(self) -> np.ndarray:
        """A float64 copy of the episode's whole state: MuJoCo's integration state (`mjSTATE_INTEGRATION`:
        time, qpos, qvel, actuator activations and controls, mocap poses, warm start) followed by the goal.
        `set_state` restores it. The restored physics state is exact, but MuJoCo's derived quantities are
        recomputed there (`mj_forward`), where after `step` they lag one substep; so velocities read from
        them (e.g. the tool centre point's) and the next few steps differ slightly (about 1e-2 in the
        observation, then 1e-3 m) from the original's, not bit for bit."""
        size = mujoco.mj_stateSize(self.model, self._STATE_SPEC)
        state = np.empty(size + self.goal.size)
        mujoco.mj_getState(self.model, self.data, state[:size], self._STATE_SPEC)
        state[size:] = self.goal
        return state

    def set_state(self, state: np.ndarray) -> tuple[Any, dict]:
        """Restore a `get_state` snapshot (of this task) mid-episode; returns its observation and info, as
        `reset` does. Used, e.g., to start training episodes from demonstration states; the episode's time
        limit is the wrappers' business (call it right after `reset`).

        Raises:
            ValueError: `state` does not have this task's state size, or holds NaN or inf."""
        size = mujoco.mj_stateSize(self.model, self._STATE_SPEC)
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (size + self.goal.size,):
            raise ValueError(
                f"state has shape {state.shape}; {type(self).__name__}'s get_state gives "
                f"({size + self.goal.size},) (physics {size} + goal {self.goal.size})"
            )
        if not np.isfinite(state).all():
            raise ValueError("state holds NaN or inf entries; a get_state snapshot is always finite")
        mujoco.mj_setState(self.model, self.data, state[:size], self._STATE_SPEC)
        self.goal = state[size:].copy()
        marker = self._goal_marker_position()
        if marker is not None:
            self.sim.set_goal_marker(marker)
        mujoco.mj_forward(self.model, self.data)
        obs = self._observation()
        self._last_obs = obs
        return obs, self._info(self._achieved_goal())

    def _apply_action(self, action: np.ndarray) -> None:
        """Turn a validated, clipped action into actuator targets (a robot with more joints overrides it)."""
        if self.control_mode == "ee_delta_pos":
            self.arm.command_tcp_delta(action[:3])
        else:
            self.arm.command_joint_delta(action[:7])
        self.arm.set_gripper(action[-1])

    def _proprio(self, out: np.ndarray) -> np.ndarray:
        """Proprioception into `out[proprio_dim]` (the arm's `PandaArm.proprio` by default)."""
        return self.arm.proprio(out)

    def step(self, action):
        action = self._validate_action(action)
        self._apply_action(action)
        start_time = self.data.time
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)

        # MuJoCo resets the state (time included) and counts a warning when qpos/qvel/qacc go bad. The
        # clock tells in one compare, except for a reset during an episode's very first substep.
        if self.data.time < start_time + self._min_step_advance or (
            start_time == 0.0 and self.data.warning.number[_DIVERGENCE_SLICE].any()
        ):
            info = {"is_success": False, "physics_error": self._physics_error()}
            mujoco.mj_resetData(self.model, self.data)
            self.arm.reset()
            mujoco.mj_forward(self.model, self.data)
            # A copy: observations are never shared between calls (users keep them).
            return copy.deepcopy(self._last_obs), 0.0, False, True, info

        info = self._info(self._achieved_goal())
        obs = self._observation()
        reward = self._step_reward(obs, info)
        self._last_obs = obs
        if self.render_mode == "human":
            self.render()
        return obs, reward, False, False, info

    def _step_reward(self, obs, info: dict) -> float:
        """The goal reward, from the values info already holds (sparse: 0 when the goal is reached, else
        -1; dense: minus the goal distance), plus the task's shaping when dense."""
        if self.reward_type == "sparse":
            return float(info["is_success"]) - 1.0
        return -info["goal_distance"] + self._shaping_reward()

    def object_states(self) -> ObjectStates:
        """Object-centric state, `features` float32 [n_objects, 16], world frame (see ObjectStates)."""
        return self.sim.object_states()

    # ---- input checks -------------------------------------------------------------------------------
    def _validate_action(self, action) -> np.ndarray:
        """A float64 copy of `action` clipped to [-1, 1]; NaN/inf entries raise ValueError."""
        try:
            action = np.array(action, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"action must be numeric with shape {self.action_space.shape}: {exc}") from exc
        if action.shape != self._action_shape:
            raise ValueError(f"action has shape {action.shape}; expected {self.action_space.shape}")
        if not math.isfinite(sum(action.tolist())):  # cheapest test on the hot path: NaN and inf propagate
            bad = np.flatnonzero(~np.isfinite(action))
            if len(bad):
                entries = ", ".join(f"[{i}]={action[i]}" for i in bad)
                raise ValueError(f"action holds non-finite entries {entries}; every entry must be finite")
        return np.minimum(np.maximum(action, -1.0, out=action), 1.0, out=action)

    def _validate_reset_options(self, options: dict | None) -> dict[str, Any]:
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.reset_option_keys))
        if unknown:
            valid = ", ".join(map(repr, self.reset_option_keys)) or "none"
            raise ValueError(
                f"unknown reset option(s) {', '.join(map(repr, unknown))} for {type(self).__name__}; "
                f"valid reset options: {valid}"
            )
        return options

    def _physics_error(self) -> str:
        counts = self.data.warning.number
        kinds = [mujoco.mjtWarning(w).name for w in _DIVERGENCE_WARNINGS if counts[w]]
        return f"MuJoCo reported {', '.join(kinds)} (time {self.data.time:.3f} s): the simulation diverged"

    # ---- observations -------------------------------------------------------------------------------
    def _info(self, achieved: np.ndarray) -> dict:
        distance = float(self._goal_distance(achieved, self.goal))
        if self._success_is_distance_threshold:  # the default test: skip computing the distance twice
            success = distance < self.success_threshold
        else:
            success = bool(self._goal_reached(achieved, self.goal))
        return {"is_success": success, "goal_distance": distance}

    def _state_vector(self, include_goal: bool) -> np.ndarray:
        """float32 [proprio 21, object features 16 per object, goal (if included)], a new array."""
        end = self.proprio_dim + self._features_size
        vector = np.empty(end + (self.goal.size if include_goal else 0), np.float32)
        self._proprio(vector)
        self.sim.update_object_features(vector[self.proprio_dim : end].reshape(-1, OBJECT_FEATURE_DIM))
        if include_goal:
            vector[end:] = self.goal
        return vector

    def _image_observations(self) -> dict[str, np.ndarray]:
        from embodylab.core.rendering import OffscreenRenderer, depth_to_pointcloud

        if self._obs_renderer is None:
            self._obs_renderer = OffscreenRenderer(self.model, self.image_size, self.image_size)
            # geom id -> segmentation id; index -1 (background) reads the trailing 0.
            self._segmentation_lut = self.sim.geom_object_index.copy()
        renderer, out = self._obs_renderer, {}
        if self.obs_mode in ("rgb", "rgbd"):
            out["rgb"] = renderer.rgb(self.data, self.camera)
        if self.obs_mode in ("depth", "rgbd", "pointcloud"):
            depth = renderer.depth(self.data, self.camera)
            if self.obs_mode == "pointcloud":
                camera_id = self.model.camera(self.camera).id
                out["xyz"] = depth_to_pointcloud(depth, self.model, self.data, camera_id)
            else:
                out["depth"] = depth[..., None]
        if self.obs_mode in ("segmentation", "pointcloud"):
            ids = self._segmentation_lut[renderer.geom_ids(self.data, self.camera)]
            if self.obs_mode == "pointcloud":
                out["point_ids"] = ids.reshape(-1)
            else:
                out["segmentation"] = ids[..., None]
        return out

    def _observation(self):
        if self.goal_conditioned:
            obs = {
                "observation": self._state_vector(include_goal=False),
                "achieved_goal": self._achieved_goal().astype(np.float32),
                "desired_goal": self.goal.astype(np.float32),
            }
            if self.obs_mode != "state":
                obs.update(self._image_observations())
            return obs
        if self.obs_mode == "state":
            return self._state_vector(include_goal=True)
        obs = self._image_observations()
        obs["proprio"] = self._proprio(np.empty(self.proprio_dim, np.float32))
        obs["goal"] = self.goal.astype(np.float32)
        return obs

    def _make_observation_space(self) -> spaces.Space:
        n_objects = len(self.sim.object_names)
        state_dim = self.proprio_dim + n_objects * OBJECT_FEATURE_DIM
        goal_dim = self.goal.size

        def vector(n: int) -> spaces.Box:
            return spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float32)

        s = self.image_size
        image_spaces = {
            "rgb": spaces.Box(0, 255, (s, s, 3), np.uint8),
            "depth": spaces.Box(0.0, np.inf, (s, s, 1), np.float32),
            "segmentation": spaces.Box(0, max(n_objects, 1), (s, s, 1), np.int32),
            "xyz": spaces.Box(-np.inf, np.inf, (s * s, 3), np.float32),
            "point_ids": spaces.Box(0, max(n_objects, 1), (s * s,), np.int32),
        }
        keys = {
            "state": (),
            "rgb": ("rgb",),
            "depth": ("depth",),
            "rgbd": ("rgb", "depth"),
            "segmentation": ("segmentation",),
            "pointcloud": ("xyz", "point_ids"),
        }[self.obs_mode]
        if self.goal_conditioned:
            return spaces.Dict(
                {
                    "observation": vector(state_dim),
                    "achieved_goal": vector(goal_dim),
                    "desired_goal": vector(goal_dim),
                    **{k: image_spaces[k] for k in keys},
                }
            )
        if self.obs_mode == "state":
            return vector(state_dim + goal_dim)
        return spaces.Dict(
            {
                **{k: image_spaces[k] for k in keys},
                "proprio": vector(self.proprio_dim),
                "goal": vector(goal_dim),
            }
        )

    # ---- rendering ----------------------------------------------------------------------------------
    def render(self):
        if self.render_mode == "rgb_array":
            from embodylab.core.rendering import OffscreenRenderer

            if self._frame_renderer is None:
                self._frame_renderer = OffscreenRenderer(self.model, self.render_size, self.render_size)
            return self._frame_renderer.rgb(self.data, self.camera)
        if self.render_mode == "human":
            import mujoco.viewer

            if self._viewer is None:
                self._viewer = mujoco.viewer.launch_passive(self.model, self.data)
            self._viewer.sync()
        return None

    # ---- copies ---------------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        # OpenGL contexts and the viewer's window do not copy: a copy makes its own when it renders.
        state = self.__dict__.copy()
        state.update(_obs_renderer=None, _frame_renderer=None, _viewer=None)
        return state

    def close(self):
        for renderer in (self._obs_renderer, self._frame_renderer):
            if renderer is not None:
                renderer.close()
        self._obs_renderer = self._frame_renderer = None
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None


class GoalConditionedEnv(gym.Env):
    """The goal-conditioned face of a task: `compute_reward`, the base of every `EmbodiedEnv.GoalConditioned`.
    Their step reward is `compute_reward` of the step's observed (float32) goals, so the two agree bit for
    bit. A `gym.Env` (as Gymnasium-Robotics' `GoalEnv`), so that an instance of a task can become one of its
    `GoalConditioned` class: a plain mixin would give the class another object layout."""

    def compute_reward(self, achieved_goal, desired_goal, info) -> np.ndarray:
        """Goal reward, float32, vectorised over leading axes (SB3's HER calls it on batches).

        sparse: 0 when the goal is reached, else -1; dense: minus the goal distance."""
        achieved_goal = np.asarray(achieved_goal, dtype=np.float64)
        desired_goal = np.asarray(desired_goal, dtype=np.float64)
        if self.reward_type == "sparse":
            return np.asarray(self._goal_reached(achieved_goal, desired_goal), dtype=np.float32) - 1.0
        return -np.asarray(self._goal_distance(achieved_goal, desired_goal), dtype=np.float32)

    def _step_reward(self, obs: dict, info: dict) -> float:
        return float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
