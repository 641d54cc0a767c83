import imageio.v2 as imageio
import pytest
from helpers import run_cli

from embodylab import env_ids
from embodylab.cli.render import render_episodes
from embodylab.recording import contact_sheet_path


def test_envs_lists_every_registered_id(capsys):
    code, out, _ = run_cli(capsys, "envs")
    assert code == 0
    for env_id in env_ids():
        assert env_id in out


def test_info_states_the_reach_task_and_its_rates(capsys):
    code, out, _ = run_cli(capsys, "info", "LabReach-v0")
    assert code == 0
    assert "embodylab/LabReach-v0" in out
    assert "within 3 cm" in out  # the task's docstring: its success criterion
    assert "max_episode_steps  50" in out
    assert "frame_skip         20" in out
    assert "25 Hz" in out
    for obs_mode in ("state", "rgb", "pointcloud"):
        assert obs_mode in out


def test_render_random_policy_writes_video_and_contact_sheet(capsys, tmp_path):
    video = tmp_path / "reach.mp4"
    args = [
        "render",
        "LabReach-v0",
        "--policy",
        "random",
        "--episodes",
        "1",
        "--size",
        "32",
        "--out",
        str(video),
    ]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    assert str(video) in out
    reader = imageio.get_reader(video)
    assert reader.count_frames() >= 51  # the reset frame and one per step of the 50-step episode
    reader.close()
    assert imageio.imread(contact_sheet_path(video)).ndim == 3


def test_render_episodes_reports_expert_success_per_episode(tmp_path):
    result = render_episodes("LabReach-v0", "expert", 2, tmp_path / "reach.gif", size=16, progress=False)
    assert [e["seed"] for e in result["episodes"]] == [0, 1]
    assert result["successes"] == 2
    assert (tmp_path / "reach.gif").exists()


def test_unknown_id_exits_nonzero_naming_the_valid_ids(capsys):
    code, out, err = run_cli(capsys, "info", "LabFly-v0")
    assert code != 0
    assert "Traceback" not in out + err
    for env_id in env_ids():
        assert env_id in err


def test_unknown_output_suffix_exits_nonzero_naming_the_valid_suffixes(capsys, tmp_path):
    code, _, err = run_cli(capsys, "render", "LabReach-v0", "--out", str(tmp_path / "reach.avi"))
    assert code != 0
    assert ".mp4" in err and ".gif" in err


def test_unknown_policy_is_rejected_by_name(capsys):
    code, out, err = run_cli(capsys, "render", "LabReach-v0", "--policy", "greedy")
    assert code != 0
    assert "expert" in out + err and "random" in out + err


def test_render_episodes_rejects_unknown_policy(tmp_path):
    with pytest.raises(ValueError, match="valid policies: expert, random"):
        render_episodes("LabReach-v0", "greedy", 1, tmp_path / "reach.mp4")
