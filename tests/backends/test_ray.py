"""Ray Tune on a real two-node cluster on this machine (``ray.cluster_utils.Cluster``).

The head node has no CPUs, so every trial runs on the second node; the trial code gets no
path into the run directory (results travel through Ray). The second node declares one GPU
(no real GPU needed: Ray schedules declared resources), so two ``--gpus-per-trial 0.5``
trials run at once and two ``1.0`` trials do not. A trial whose worker process dies is
retried by ``FailureConfig``.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from search.runner import RunSettings, start_run
from search.store import RunStore, TrialRecord

ray = pytest.importorskip("ray", reason="Ray Tune is an extra: pip install '.[ray]'")

SPACES = Path(__file__).resolve().parents[1] / "spaces"
GOOD = {"bad": False, "boom": False}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["SEARCH_CRASH_MARKER"] = str(Path(tempfile.mkdtemp()) / "crashed")
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False,
        "_system_config": {"health_check_period_ms": 1000}})
    c.add_node(num_cpus=2, num_gpus=1)
    c.wait_for_nodes()
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _run(cluster: Any, tmp_path: Path, name: str, space: str, trials: int,
         enqueue: list[dict[str, object]], **options: object) -> RunStore:
    settings = RunSettings(trials=trials, folds=2, seed=1, keep_models=10, backend="ray",
                           options={"algorithm": "random", "address": cluster.address, **options})
    return start_run(SPACES / space, settings, out=tmp_path, name=name, enqueue=enqueue)


def _overlap(a: TrialRecord, b: TrialRecord) -> bool:
    assert a.finished is not None and b.finished is not None
    return a.started < b.finished and b.started < a.finished


def test_trials_run_on_the_second_node_and_reach_the_store(cluster: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from search.backends import ray as ray_backend

    seen: list[bytes] = []
    real_with_parameters = ray.tune.with_parameters

    def spy_with_parameters(fn: Any, **kwargs: Any) -> Any:
        seen.append(pickle.dumps(kwargs["plan"]))
        return real_with_parameters(fn, **kwargs)

    monkeypatch.setattr(ray_backend.tune, "with_parameters", spy_with_parameters)
    store = _run(cluster, tmp_path, "two-node", "contract.py", 3, [GOOD, GOOD])
    trials = store.trials()
    assert [(t.number, t.status) for t in trials] == [(0, "complete"), (1, "complete"),
                                                     (2, "complete")]
    head = cluster.head_node.node_id
    nodes = {t.node for t in trials[1:]}
    assert None not in nodes and head not in nodes  # all ran on the second node
    assert trials[0].node is None  # trial 0: the driver
    for t in trials[1:]:
        assert (store.trial_dir(t.number) / "fold_1.keras").is_file()
        assert store.load_oof(t.number).shape == (40, 1)
    # What the workers were given holds no path into the run directory.
    assert seen and all(str(store.root).encode() not in blob for blob in seen)
    assert all(str(store.root) not in str(t.params) for t in trials)


def test_half_gpu_trials_share_one_gpu(cluster: Any, tmp_path: Path) -> None:
    half = _run(cluster, tmp_path, "half", "slow.py", 3, [], gpus_per_trial=0.5)
    a, b = half.trials()[1:]
    assert _overlap(a, b), "two 0.5-GPU trials should run at once on a 1-GPU node"
    whole = _run(cluster, tmp_path, "whole", "slow.py", 3, [], gpus_per_trial=1.0)
    c, d = whole.trials()[1:]
    assert not _overlap(c, d), "two 1-GPU trials cannot run at once on a 1-GPU node"
    assert half.read_run()["settings"]["options"]["gpus_per_trial"] == 0.5


def test_crashed_worker_is_retried(cluster: Any, tmp_path: Path) -> None:
    store = _run(cluster, tmp_path, "crash", "crash_once.py", 2, [{"crash": True}],
                 worker_retries=2)
    crashed = store.read_trial(1)
    assert Path(os.environ["SEARCH_CRASH_MARKER"]).is_file()  # the first attempt died
    assert crashed.params["crash"] is True
    assert crashed.status == "complete" and len(crashed.folds) == 2
