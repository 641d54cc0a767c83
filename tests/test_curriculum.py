from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv

from embodylab.envs.lab.push import goal_distance_arms
from embodylab.policies.curriculum import (
    CurriculumCallback,
    CurriculumWrapper,
    LearningProgress,
    make_teacher,
)

ENV_ID = "embodylab/LabPush-v0"
ARMS = goal_distance_arms(n_bins=4, max_distance=0.35)


def cube_goal_distance(env: gym.Env) -> float:
    u = env.unwrapped
    return float(np.linalg.norm(u.goal[:2] - u.sim.object_position("cube")[:2]))


def test_learning_progress_is_higher_on_an_arm_whose_success_rate_moves():
    progress = LearningProgress(2)
    rng, total = np.random.default_rng(0), np.zeros(2)
    for episode in range(300):
        learning = progress.update(0, float(rng.random() < episode / 300))  # 0% -> 100%
        flat = progress.update(1, float(rng.random() < 0.5))  # 50% throughout: only noise
        if episode >= 100:
            total += (learning, flat)
    assert total[0] > 1.5 * total[1]


def test_learning_progress_of_a_constant_outcome_is_zero():
    progress = LearningProgress(3)
    for _ in range(50):
        progress.update(1, 1.0)
    np.testing.assert_allclose(progress.progress(), 0.0)
    assert progress.success_rates()[1] == pytest.approx(1.0)
    assert np.isnan(progress.success_rates()[[0, 2]]).all()


@pytest.mark.parametrize("name", ["ucb", "thompson", "gradient"])
def test_teacher_prefers_the_learnable_arm_to_impossible_and_mastered_ones(name):
    # Arm 0 never succeeds, arm 1 always does, arm 2's success rate climbs each time it is played.
    teacher = make_teacher(name, [{}, {}, {}], np.random.default_rng(0))
    rng, plays = np.random.default_rng(1), np.zeros(3, dtype=int)
    for _ in range(600):
        arm = teacher.next_arm()
        rate = (0.0, 1.0, min(plays[2] / 300, 1.0))[arm]
        teacher.record(arm, float(rng.random() < rate))
        plays[arm] += 1
    assert plays[2] > 2 * (plays[0] + plays[1])


def test_goal_distance_arms_cut_the_range_into_equal_bins():
    arms = goal_distance_arms(n_bins=5, max_distance=0.35)
    edges = [arm["goal_distance"] for arm in arms]
    assert edges[0][0] == pytest.approx(0.1) and edges[-1][1] == pytest.approx(0.35)
    np.testing.assert_allclose([hi - lo for lo, hi in edges], 0.05)


@pytest.mark.parametrize("arm", ARMS + [{"goal_distance": (0.4, 0.45)}])
def test_push_goal_lies_in_the_requested_distance_bin_inside_the_workspace(arm):
    from embodylab.envs.lab.base import WORKSPACE_HIGH, WORKSPACE_LOW

    env = gym.make(ENV_ID)
    lo, hi = arm["goal_distance"]
    for seed in range(10):
        env.reset(seed=seed, options=arm)
        assert lo <= cube_goal_distance(env) <= hi
        goal = env.unwrapped.goal[:2]
        assert (goal >= WORKSPACE_LOW).all() and (goal <= WORKSPACE_HIGH).all()


def test_push_without_options_keeps_its_seeded_layout():
    env = gym.make(ENV_ID)
    env.reset(seed=3)
    plain = env.unwrapped.goal.copy()
    env.reset(seed=3, options={})
    np.testing.assert_array_equal(env.unwrapped.goal, plain)
    env.reset(seed=3, options={"goal_distance": (0.3, 0.35)})
    assert not np.allclose(env.unwrapped.goal, plain)


def test_push_rejects_unknown_options_naming_the_valid_ones():
    env = gym.make(ENV_ID)
    with pytest.raises(ValueError, match="'object_count'.*valid reset options: 'goal_distance'"):
        env.reset(seed=0, options={"object_count": 2})


@pytest.mark.parametrize("bad", [(0.3, 0.2), (0.1, 0.6), 0.2])
def test_push_rejects_bad_goal_distances(bad):
    with pytest.raises(ValueError, match="goal_distance"):
        gym.make(ENV_ID).reset(seed=0, options={"goal_distance": bad})


def test_tasks_without_variants_reject_any_option():
    with pytest.raises(ValueError, match="valid reset options: none"):
        gym.make("embodylab/LabReach-v0").reset(seed=0, options={"goal_distance": (0.1, 0.2)})


def test_wrapper_resets_with_the_chosen_arm_and_reports_success():
    teacher = make_teacher("thompson", ARMS, np.random.default_rng(0))
    env = CurriculumWrapper(gym.make(ENV_ID, max_episode_steps=3), teacher)
    for seed in range(8):
        _, info = env.reset(seed=seed)
        lo, hi = ARMS[info["curriculum_arm"]]["goal_distance"]
        assert lo <= cube_goal_distance(env) <= hi
        truncated = False
        while not truncated:
            _, _, _, truncated, _ = env.step(np.zeros(env.action_space.shape))
    assert teacher.progress.episodes.sum() == 8
    assert env.arm_probabilities().sum() == pytest.approx(1.0)
    assert env.success_rates().shape == (len(ARMS),)


def test_a_seeded_teacher_replays_its_arms():
    def arms(seed: int) -> list[int]:
        teacher = make_teacher("gradient", ARMS, np.random.default_rng(seed))
        rng, picked = np.random.default_rng(9), []
        for _ in range(200):
            picked.append(teacher.next_arm())
            teacher.record(picked[-1], float(rng.random() < 0.1 * (picked[-1] + 1)))
        return picked

    assert arms(0) == arms(0)
    assert arms(0) != arms(1)


def test_envs_of_a_dummy_vec_env_share_one_teacher_and_callback_logs_it():
    teacher = make_teacher("ucb", ARMS, np.random.default_rng(0))
    venv = DummyVecEnv([lambda: CurriculumWrapper(gym.make(ENV_ID, max_episode_steps=2), teacher)] * 2)
    venv.reset()
    for _ in range(6):  # three episodes in each env
        venv.step(np.zeros((2, *venv.action_space.shape)))
    assert teacher.progress.episodes.sum() == 6

    logger = Logger(folder=None, output_formats=[])
    model = SimpleNamespace(num_timesteps=0, logger=logger)  # what BaseCallback reads of an SB3 algorithm
    callback = CurriculumCallback(teacher, log_every=4)
    callback.init_callback(model)
    model.num_timesteps = 2
    callback.on_step()
    assert not logger.name_to_value
    model.num_timesteps = 4
    callback.on_step()
    assert logger.name_to_value["curriculum/p_arm0"] == pytest.approx(teacher.arm_probabilities()[0])
    assert logger.name_to_value["curriculum/episodes_arm0"] == teacher.progress.episodes[0]
    assert {f"curriculum/success_arm{i}" for i in range(len(ARMS))} <= set(logger.name_to_value)


def test_training_with_a_curriculum_logs_the_teacher(tmp_path):
    pytest.importorskip("stable_baselines3")
    from embodylab.policies.config import Curriculum, Her, Sac, TrainConfig
    from embodylab.policies.rl import train

    config = TrainConfig(
        env="embodylab/LabPush-v0",
        algo=Sac(learning_starts=100, batch_size=16, net_arch=(16, 16), her=Her()),
        curriculum=Curriculum("ucb"),
        steps=400,
        seed=0,
        out=str(tmp_path / "push_ucb"),
        eval_every=0,
        checkpoint_every=0,
    )
    run = train(config)
    assert (run / "config.json").exists()


def test_curriculum_on_a_task_without_variants_is_refused():
    from embodylab.policies.curriculum import wrap_for_curriculum

    with pytest.raises(ValueError, match="LabPush"):
        wrap_for_curriculum(gym.make("embodylab/LabReach-v0"), "ucb", 0)


def hand_cube_distance(env: gym.Env) -> float:
    u = env.unwrapped
    return float(np.linalg.norm(u.arm.tcp_pos[:2] - u.sim.object_position("cube")[:2]))


@pytest.mark.parametrize("distances", [(0.05, 0.1), (0.2, 0.25)])
def test_push_hand_starts_at_the_requested_distance_from_the_cube(distances):
    from embodylab.envs.lab.push import HAND_START_HIGH, HAND_START_LOW

    env = gym.make(ENV_ID)
    for seed in range(8):
        env.reset(seed=seed, options={"hand_distance": distances})
        # The IK lands within its 1 mm tolerance of the drawn point.
        assert distances[0] - 1e-3 <= hand_cube_distance(env) <= distances[1] + 1e-3
        tcp = env.unwrapped.arm.tcp_pos
        assert tcp[2] == pytest.approx(env.unwrapped.start_tcp_height, abs=1e-3)
        assert (tcp[:2] >= HAND_START_LOW - 1e-3).all() and (tcp[:2] <= HAND_START_HIGH + 1e-3).all()
        # The hand starts at rest: one zero action leaves the cube where it was placed.
        cube = env.unwrapped.sim.object_position("cube").copy()
        env.step(np.zeros(env.action_space.shape))
        np.testing.assert_allclose(env.unwrapped.sim.object_position("cube")[:2], cube[:2], atol=2e-3)


def test_push_hand_start_keeps_the_cube_and_goal_of_the_seed():
    env = gym.make(ENV_ID)
    env.reset(seed=5)
    cube, goal, home = (
        env.unwrapped.sim.object_position("cube").copy(),
        env.unwrapped.goal.copy(),
        hand_cube_distance(env),
    )
    env.reset(seed=5, options={"hand_distance": (0.05, 0.1)})
    np.testing.assert_array_equal(env.unwrapped.goal, goal)
    np.testing.assert_array_equal(env.unwrapped.sim.object_position("cube"), cube)
    assert hand_cube_distance(env) != pytest.approx(home)


@pytest.mark.parametrize("bad", [(0.1, 0.05), (0.1, 0.3), "near"])
def test_push_rejects_bad_hand_distances(bad):
    with pytest.raises(ValueError, match="hand_distance"):
        gym.make(ENV_ID).reset(seed=0, options={"hand_distance": bad})


def test_hand_start_arms_end_with_the_unchanged_task():
    from embodylab.envs.lab.push import hand_start_arms

    arms = hand_start_arms((0.05, 0.1, 0.2))
    assert arms == [{"hand_distance": (0.05, 0.1)}, {"hand_distance": (0.1, 0.2)}, {}]
    with pytest.raises(ValueError, match="increasing"):
        hand_start_arms((0.1, 0.05))
    with pytest.raises(ValueError, match="hand_distance"):
        hand_start_arms((0.1, 0.4))


def test_curriculum_variants_pick_the_family_of_arms():
    from embodylab.policies.curriculum import wrap_for_curriculum

    env = wrap_for_curriculum(gym.make(ENV_ID), "uniform", 0, "hand_start")
    assert env.teacher.arms[-1] == {} and "hand_distance" in env.teacher.arms[0]
    assert wrap_for_curriculum(gym.make(ENV_ID), "uniform", 0).teacher.arms == goal_distance_arms()
    with pytest.raises(ValueError, match="hand_start"):
        wrap_for_curriculum(gym.make(ENV_ID), "uniform", 0, "object_count")


def test_target_share_runs_the_unchanged_task_that_often_and_still_informs_the_bandit():
    arms = [{"goal_distance": (0.1, 0.2)}, {"goal_distance": (0.2, 0.3)}, {}]
    teacher = make_teacher("ucb", arms, np.random.default_rng(0), target_share=0.4)
    assert teacher.target_arm == 2
    # Only arm 0 ever makes progress, so UCB alone would settle there; the share keeps the task in play.
    picks = []
    for episode in range(3000):
        arm = teacher.next_arm()
        picks.append(arm)
        teacher.record(arm, float(arm == 0 and episode % 3 == 0 and episode > 1500))
    share = np.mean(np.array(picks[-1000:]) == 2)
    assert 0.35 < share < 0.5
    assert teacher.progress.episodes[2] == picks.count(2)


def test_target_share_needs_the_unchanged_task_among_the_arms_and_a_valid_share():
    with pytest.raises(ValueError, match="unchanged task"):
        make_teacher("ucb", ARMS, np.random.default_rng(0), target_share=0.3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_teacher("ucb", [*ARMS, {}], np.random.default_rng(0), target_share=1.5)


def test_curriculum_target_share_must_be_a_share_and_reaches_the_teacher():
    from embodylab.policies.config import ConfigError, Curriculum, TrainConfig
    from embodylab.policies.curriculum import wrap_for_curriculum

    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        TrainConfig(env=ENV_ID, curriculum=Curriculum("ucb", target_share=-0.1)).validate()
    env = wrap_for_curriculum(gym.make(ENV_ID), "ucb", 0, "hand_start", target_share=0.25)
    assert env.teacher.target_share == 0.25 and env.teacher.target_arm == 2
