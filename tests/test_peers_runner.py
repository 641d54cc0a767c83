"""benchmarks/peers/run.py without the peer venvs: a clear error that names `make bench-peers`."""

import importlib.util
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parent.parent / "benchmarks" / "peers" / "run.py"


@pytest.fixture
def run(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("peers_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "VENVS", tmp_path / ".bench-venvs")  # none built there
    return module


def test_peers_listed(run):
    assert run.PEERS == ("fetch", "robosuite", "metaworld")
    for peer in run.PEERS:
        assert (RUN_PY.parent / f"{peer}.py").is_file()
        assert (RUN_PY.parent / f"requirements-{peer}.txt").is_file()


@pytest.mark.parametrize("peer", ["fetch", "robosuite", "metaworld"])
def test_missing_venv_names_make_target(run, peer):
    assert not run.peer_available(peer)
    with pytest.raises(RuntimeError, match="make bench-peers") as err:
        run.run_peer(peer, steps=10)
    assert peer in str(err.value)


def test_unknown_peer(run):
    with pytest.raises(ValueError, match="unknown peer"):
        run.peer_available("isaac")


def test_venv_without_stamp_is_not_available(run):
    python = run.VENVS / "fetch" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    assert not run.peer_available("fetch")  # an interrupted `make bench-peers` leaves no .installed
    with pytest.raises(RuntimeError, match="make bench-peers"):
        run.run_peer("fetch", steps=10)
