import json

import gymnasium as gym
import numpy as np
import pytest
from helpers import run_cli

from embodylab.envs.lab.clutter import MAX_OBJECTS, MIN_SEPARATION
from embodylab.skills.experts import rollout
from embodylab.world_models.data import (
    CATEGORIES,
    CategoryVocabulary,
    WorldModelDatasetError,
    category_ids,
    check_categories,
    collect,
    load_dataset,
)


@pytest.mark.parametrize("n_objects", [1, 6, MAX_OBJECTS])
def test_clutter_scene_holds_n_separated_cubes_with_the_target_first(n_objects):
    env = gym.make("embodylab/LabClutter-v0", n_objects=n_objects)
    env.reset(seed=n_objects)
    states = env.unwrapped.object_states()
    assert states.features.shape == (n_objects, 16)
    assert states.categories == ["target_cube"] + ["cube"] * (n_objects - 1)
    xy = states.features[:, :2]
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(n_objects)
    assert gaps.min() >= MIN_SEPARATION - 1e-6


@pytest.mark.parametrize("bad", [0, MAX_OBJECTS + 1, 2.5, True])
def test_clutter_rejects_object_counts_outside_one_to_eight(bad):
    with pytest.raises(ValueError, match=r"n_objects"):
        gym.make("embodylab/LabClutter-v0", n_objects=bad)


def test_clutter_expert_pushes_the_target_through_four_cubes():
    env = gym.make("embodylab/LabClutter-v0", n_objects=4)
    assert sum(rollout(env, seed) for seed in range(4)) >= 3


def test_a_new_category_gets_the_next_id_after_the_embedded_ones():
    vocabulary = CategoryVocabulary()
    np.testing.assert_array_equal(vocabulary.ids(["cube", "teapot", "tube", "teapot"]), [0, 3, 2, 3])
    assert vocabulary.names == [*CATEGORIES, "teapot"]
    np.testing.assert_array_equal(category_ids(["mug"]), [len(CATEGORIES)])


def test_collection_keeps_the_names_of_categories_the_models_do_not_embed(tmp_path, monkeypatch):
    from embodylab.core.scene import ObjectStates
    from embodylab.envs.lab.push import LabPushEnv

    original = LabPushEnv.object_states

    def renamed(self):  # a task whose objects are of a category no model embeds
        states = original(self)
        return ObjectStates(states.names, ["teapot"] * len(states.names), states.features)

    monkeypatch.setattr(LabPushEnv, "object_states", renamed)
    data = load_dataset(collect("LabPush-v0", "random", 1, tmp_path, progress=False))
    assert data.category_names == (*CATEGORIES, "teapot")
    assert (data.categories[data.mask] == len(CATEGORIES)).all()
    with pytest.raises(ValueError, match=r"categories \['teapot'\] that the world models do not embed"):
        check_categories(data)


def test_collect_cli_writes_a_loadable_object_centric_dataset(capsys, tmp_path):
    code, out, err = run_cli(
        capsys, "collect", "--env", "LabClutter-v0", "--policy", "random", "--episodes", "2",
        "--n-objects", "1", "3", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    assert "wrote the Minari dataset" in out
    data = load_dataset(tmp_path)
    assert len(data) == 2
    assert data.n_objects.tolist() == [1, 3]
    assert data.features.shape == (2, 101, 8, 16)
    assert data.actions.shape == (2, 100, 4) and data.proprio.shape == (2, 101, 21)
    assert not data.features[0, :, 1:].any()  # padding slots are empty
    # The recorded states are the env's own: replaying the actions from the seed reproduces them.
    env = gym.make("embodylab/LabClutter-v0", n_objects=3)
    env.reset(seed=1)
    for action in data.actions[1, :5]:
        env.step(action)
    np.testing.assert_allclose(env.unwrapped.object_states().features, data.features[1, 5, :3], atol=1e-5)


def test_a_dataset_without_world_model_fields_gives_an_error_naming_them(tmp_path):
    from embodylab.policies.demos import record_demos

    path = record_demos(gym.make("embodylab/LabReach-v0"), 1, tmp_path)
    with pytest.raises(WorldModelDatasetError, match="object_features.*infos.success"):
        load_dataset(path)


def test_a_missing_dataset_gives_an_error_naming_the_path(tmp_path):
    with pytest.raises(WorldModelDatasetError, match=str(tmp_path / "nothing")):
        load_dataset(tmp_path / "nothing")


def test_train_eval_and_plan_cli_run_end_to_end(capsys, tmp_path):
    data = tmp_path / "data"
    assert (
        run_cli(
            capsys,
            "collect",
            "--env",
            "LabPush-v0",
            "--policy",
            "expert",
            "--episodes",
            "2",
            "--out",
            str(data),
        )[0]
        == 0
    )
    run = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "train-wm", "--dataset", str(data), "--out", str(run), "--steps", "2", "--batch-size", "4",
        "--d-model", "16", "--val-every", "2",
    )  # fmt: skip
    assert code == 0, err
    assert "samples/s" in out and (run / "checkpoint" / "weights.pt").exists() and (run / "tb").is_dir()
    code, out, err = run_cli(capsys, "eval-wm", str(run), "--samples", "2", "--stride", "50")
    assert code == 0, err
    assert "rmse@25" in out and (run / "eval_wm.json").exists() and (run / "eval_wm_held_out.png").exists()
    code, out, err = run_cli(
        capsys,
        "plan-wm",
        str(run),
        "--episodes",
        "1",
        "--samples",
        "8",
        "--iterations",
        "1",
        "--elites",
        "4",
        "--horizon",
        "2",
        "--prior",
        "data",
        "--motion-weight",
        "0.05",
    )
    assert code == 0, err
    assert "success rate" in out and (run / "plan_wm.json").exists()
    mppi = json.loads((run / "plan_wm.json").read_text())["mppi"]
    assert mppi["prior"] == "data" and mppi["motion_weight"] == 0.05

    # A DAgger round: the planner's own episodes join the dataset, and the model is fine-tuned on it.
    code, out, err = run_cli(
        capsys, "plan-wm", str(run), "--episodes", "1", "--samples", "8", "--iterations", "1", "--elites", "4",
        "--horizon", "2", "--seed", "77", "--record", str(data),
    )  # fmt: skip
    assert code == 0, err
    assert "planner-v0" in out
    grown = load_dataset(data)
    assert len(grown) == 3
    planned = load_dataset(data / "embodylab" / "LabPush" / "planner-v0")
    report = json.loads((run / "plan_wm.json").read_text())
    assert planned.lengths.tolist() == [report["episodes"][0]["steps"]]
    assert np.isclose(planned.rewards.sum(), report["episodes"][0]["return"], atol=1e-3)
    tuned = tmp_path / "tuned"
    code, out, err = run_cli(
        capsys, "train-wm", "--dataset", str(data), "--init-from", str(run), "--out", str(tuned), "--steps", "2",
        "--batch-size", "4", "--val-every", "2",
    )  # fmt: skip
    assert code == 0, err
    assert (tuned / "checkpoint" / "weights.pt").exists()
    # The two models plan as an ensemble.
    code, out, err = run_cli(
        capsys, "plan-wm", str(run), "--ensemble", str(tuned), "--disagreement-weight", "1.0", "--episodes", "1",
        "--samples", "8", "--iterations", "1", "--elites", "4", "--horizon", "2",
    )  # fmt: skip
    assert code == 0, err
    assert "an ensemble of 2 learned models" in out
    report = json.loads((run / "plan_wm.json").read_text())
    assert report["models"] == [str(run), str(tuned)] and report["mppi"]["disagreement_weight"] == 1.0


def test_eval_wm_on_a_missing_run_exits_with_a_one_line_error(capsys, tmp_path):
    code, out, err = run_cli(capsys, "eval-wm", str(tmp_path / "nothing"))
    assert code == 2
    assert "no world-model checkpoint" in err and "Traceback" not in out + err


def test_an_object_count_for_a_task_without_the_knob_names_the_task_that_has_it(tmp_path):
    from embodylab.world_models.data import collect

    with pytest.raises(ValueError, match="no object-count knob.*LabClutter-v0"):
        collect("LabPush-v0", "random", 1, tmp_path, n_objects=(3,), progress=False)
