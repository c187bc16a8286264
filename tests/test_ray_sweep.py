"""`sweep(executor="ray")`: the same runs as the local pool, as tasks on a local Ray instance."""

from __future__ import annotations

import json
import sys

import pytest

from og_marl_inspo.sweep import Run, sweep

try:
    import ray
except ImportError:
    ray = None
requires_ray = pytest.mark.skipif(
    ray is None, reason="Ray is not installed (optional extra: pip install 'og-marl-inspo[ray]')")

OVERRIDES = ("evaluation.episodes=10", "evaluation.every=10")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024**2,
             log_to_driver=False)
    yield ray
    ray.shutdown()


@requires_ray
def test_ray_sweep_of_two_systems_by_two_seeds(local_ray, vault_root, tmp_path, capsys):
    runs = [Run(system, "inspo", "matrix", "xor", "A", seed) for system in ("bc", "inspo")
            for seed in (0, 1)]
    bad = Run("bc", "inspo", "matrix", "xor", "NoSuchDataset", 0)
    failures = sweep(runs + [bad], results_dir=str(tmp_path), rel_dir=vault_root, train_steps=10,
                     overrides=OVERRIDES, checkpoint=False, executor="ray")
    out = capsys.readouterr().out
    assert out.count(": done") == 4 and out.count(": FAILED") == 1
    (failure,) = failures  # a user error comes back as one line, like the local pool's
    assert failure.startswith(str(bad)) and "NoSuchDataset" in failure
    for run in runs:
        path = tmp_path / "inspo/matrix/xor/A" / run.system / f"seed_{run.seed}.json"
        result = json.loads(path.read_text())
        assert (result["system"], result["seed"]) == (run.system, run.seed)
        assert result["final"]["step"] == 10
    assert ray.is_initialized()  # the caller's Ray instance is left running

    assert sweep(runs, results_dir=str(tmp_path), rel_dir=vault_root, executor="ray") == []
    assert ": done" not in capsys.readouterr().out  # every results file exists: nothing sent


def test_unknown_executor_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown executor 'dask'; known: local, ray"):
        sweep([], results_dir=str(tmp_path), executor="dask")


def test_ray_executor_without_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    run = Run("bc", "inspo", "matrix", "xor", "A", 0)
    with pytest.raises(ValueError, match=r"pip install 'og-marl-inspo\[ray\]'"):
        sweep([run], results_dir=str(tmp_path), executor="ray")
