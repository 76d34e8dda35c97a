"""The CLI with --backend: a Ray run end to end (its own local runtime), and flag mistakes
caught before anything starts (exit 2, the flag named)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search.store import RunStore

SPACES = Path(__file__).resolve().parents[1] / "spaces"


def test_ray_run_from_the_cli_then_ensemble(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("ray", reason="Ray Tune is an extra: pip install '.[ray]'")
    res = run_cli("run", SPACES / "tiny_regression.py", "--backend", "ray", "--algorithm",
                  "tpe", "--scheduler", "asha", "--trials", "4", "--jobs", "2", "--out",
                  tmp_path, "--name", "r", "--seed", "2", timeout=600)
    assert res.returncode == 0, res.stderr
    store = RunStore(tmp_path / "r")
    trials = store.trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.status in ("complete", "pruned") for t in trials)
    assert all(t.backend == "ray" and t.backend_id for t in trials[1:])
    run = store.read_run()
    assert run["settings"]["backend"] == "ray"
    assert run["settings"]["options"]["scheduler"] == "asha"
    # Later stages read only the store: the ensemble ran on the Ray run as on any other.
    report = json.loads((store.root / "ensemble.json").read_text())
    assert report["kinds"]["folds"]["members"]
    assert (store.root / "ray").is_dir()  # Tune's experiment directory, inside the run


@pytest.mark.parametrize(("args", "expected"), [
    (["--scheduler", "asha"], "--scheduler is not an option of --backend optuna"),
    (["--backend", "ray", "--sampler", "tpe"], "--sampler is not an option of --backend ray"),
    (["--backend", "nope"], "--backend must be one of"),
    (["--backend", "ray", "--algorithm", "bayes"], "--algorithm must be one of"),
    (["--backend", "ray", "--gpus-per-trial", "-1"], "--gpus-per-trial must be a number"),
])
def test_backend_flag_mistakes_exit_2(tmp_path: Path, run_cli, args: list[str],  # type: ignore[no-untyped-def]
                                      expected: str) -> None:
    if "ray" in args:
        pytest.importorskip("ray", reason="Ray Tune is an extra: pip install '.[ray]'")
    res = run_cli("run", SPACES / "tiny_regression.py", *args, "--out", tmp_path)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr
    assert not any(tmp_path.iterdir())  # nothing was created


def test_unreachable_ray_cluster_exits_2_before_anything(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("ray", reason="Ray Tune is an extra: pip install '.[ray]'")
    res = run_cli("run", SPACES / "tiny_regression.py", "--backend", "ray", "--address",
                  "127.0.0.1:1", "--out", tmp_path, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "--address 127.0.0.1:1 could not be started or reached" in res.stderr
    assert "ray start --head" in res.stderr
    assert not any(tmp_path.iterdir())


def test_missing_extra_names_the_install(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    # Without Ray installed, --backend ray says how to install it; with Ray, a fake
    # backend whose package is missing stands in (same code path).
    from search.backends import BACKENDS

    assert BACKENDS["ray"][2] == 'pip install "search-ensembles[ray]"'
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        res = run_cli("run", SPACES / "tiny_regression.py", "--backend", "ray", "--out",
                      tmp_path)
        assert res.returncode == 2 and 'pip install "search-ensembles[ray]"' in res.stderr
    else:
        from search.backends import backend_class, register_backend
        from search.errors import UsageError

        register_backend("missing", "nowhere:Backend", needs=("no_such_module_xyz",),
                         install="pip install no-such")
        with pytest.raises(UsageError, match="needs the 'no_such_module_xyz' package; install "
                                             "it with `pip install no-such`"):
            backend_class("missing")
        del BACKENDS["missing"]


def test_ray_rejects_tensorboard(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("ray", reason="Ray Tune is an extra: pip install '.[ray]'")
    res = run_cli("run", SPACES / "tiny_regression.py", "--backend", "ray", "--tensorboard",
                  "--out", tmp_path)
    assert res.returncode == 2 and "--tensorboard" in res.stderr
    assert not any(tmp_path.iterdir())
