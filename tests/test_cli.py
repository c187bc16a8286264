"""The command line: config overrides, sweeps that skip finished runs, tables."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from og_marl_inspo import config as config_module
from og_marl_inspo import registry
from og_marl_inspo.cli import main, run_config
from og_marl_inspo.config import default_config, load_config_file
from og_marl_inspo.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_overrides_are_typed_and_unknown_fields_refused():
    config = run_config("bc", "inspo", "matrix", "xor", "B", 2,
                        overrides=["system.learning_rate=0.01", "system.eval_mode=greedy",
                                   "replay.batch_size=64", "system.add_agent_id_to_obs=false"])
    assert config.system.learning_rate == 0.01 and config.system.eval_mode == "greedy"
    assert config.replay.batch_size == 64 and config.system.add_agent_id_to_obs is False
    assert config.seed == 2 and config.task.dataset == "B"
    with pytest.raises(ConfigError, match="unknown config field 'system.learnin_rate'"):
        run_config("bc", "inspo", "matrix", "xor", "B", 0, overrides=["system.learnin_rate=1"])
    with pytest.raises(ConfigError, match="config field replay.batch_size"):
        run_config("bc", "inspo", "matrix", "xor", "B", 0, overrides=["replay.batch_size=many"])


def test_config_file_task_overrides_and_lock():
    smac = load_config_file("systems/bc.py:smac_v1/5m_vs_6m")
    assert smac.system.torso == "gru" and smac.replay.sequence_length == 20
    assert smac.system.eval_mode == "greedy"
    matrix = load_config_file("systems/bc.py:matrix/xor")
    assert matrix.system.torso == "mlp" and matrix.training_steps == 1000
    with pytest.raises(AttributeError):
        matrix.system.alhpa = 1.0  # locked: a misspelt field cannot be added


def test_a_wheel_carries_the_published_configs(tmp_path, monkeypatch):
    """A non-editable install must read the same systems/<name>.py as the repository."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("og_marl_inspo", "systems"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    wheel = zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl")))
    shipped = set(wheel.namelist())
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "og_marl_inspo").rglob("*.py")}
    assert not modules - shipped, "a subpackage is missing from pyproject's packages"
    ours = [name for name in registry.list_systems() if registry.is_builtin(name)]
    assert {f"og_marl_inspo/systems/{name}.py" for name in ours} <= shipped
    wheel.extractall(tmp_path / "site")
    monkeypatch.setattr(config_module, "SYSTEMS_DIRS", (tmp_path / "site" / "og_marl_inspo" / "systems",))
    installed = default_config("cql", "aloha", "aloha")
    assert installed.training_steps == 50_000  # the Aloha override, not the dataclass defaults
    assert installed.to_dict() == load_config_file(f"{REPO}/systems/cql.py:aloha/aloha").to_dict()


def test_a_builtin_system_without_its_config_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "SYSTEMS_DIRS", (tmp_path,))
    with pytest.raises(ConfigError, match="systems/cql.py, the published config of cql, is not installed"):
        default_config("cql", "aloha", "aloha")

    @dataclasses.dataclass
    class ToyConfig:
        alpha: float = 0.25

    class ToySystem:
        Config = ToyConfig

    registry.register("toy", ToySystem)  # another package's system: its dataclass defaults
    try:
        assert default_config("toy", "aloha", "aloha").system.alpha == 0.25
    finally:
        registry._REGISTERED.pop("toy")


def test_train_with_a_bad_config_value_exits_with_one_line(vault_root, tmp_path, capsys):
    code = main(["train", "--system", "bc", "--source", "inspo", "--env", "matrix", "--scenario",
                 "xor", "--dataset", "B", "--seed", "0", "--rel-dir", vault_root, "--results-dir",
                 str(tmp_path), "--config.system.learning_rate=-3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "config field system.learning_rate: must be > 0, got -3.0" in err
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


def test_sweep_says_when_a_finished_run_has_another_config(vault_root, tmp_path, caplog):
    from og_marl_inspo.sweep import Run, stale_runs

    args = ["sweep", "--systems", "bc", "--source", "inspo", "--env", "matrix", "--scenarios", "xor",
            "--datasets", "B", "--seeds", "0", "--train-steps", "10", "--rel-dir", vault_root,
            "--results-dir", str(tmp_path), "--config.evaluation.every=10"]
    assert main(args) == 0
    result = tmp_path / "inspo/matrix/xor/B/bc/seed_0.json"
    stamp = result.stat().st_mtime_ns
    run = Run("bc", "inspo", "matrix", "xor", "B", 0)
    same = ["evaluation.every=10"]
    assert stale_runs([run], str(tmp_path), None, same, 10, vault_root) == []
    assert stale_runs([run], str(tmp_path), None, same + ["system.learning_rate=0.01"], 10, vault_root) \
        == [(run, ["system.learning_rate: 0.001 there, 0.01 now"])]
    caplog.clear()
    assert main(args + ["--train-steps", "20"]) == 0
    assert "1 finished runs were made with another config" in caplog.text
    assert "training_steps: 10 there, 20 now" in caplog.text
    assert result.stat().st_mtime_ns == stamp  # kept as it was, not retrained


def test_sweep_says_when_a_run_would_evaluate_otherwise_than_its_paper_table():
    from og_marl_inspo.sweep import Run, off_paper_eval_modes

    # AlberDICE's grid config samples (its authors' mode); CPA Table 1 evaluates greedily.
    cpa_poor = Run("alberdice", "cpa", "bridge", "bridge", "Poor", 0)
    inspo_mixed = Run("alberdice", "inspo", "bridge", "bridge", "Mixed", 0)
    no_paper_row = Run("alberdice", "cpa", "bridge", "bridge", "NotInAPaper", 0)
    runs = [cpa_poor, inspo_mixed, no_paper_row]
    assert off_paper_eval_modes(runs) == [(cpa_poor, "stochastic", "greedy")]
    assert off_paper_eval_modes(runs, overrides=["system.eval_mode=greedy"]) == \
        [(inspo_mixed, "greedy", "stochastic")]


def _proc_stat(pid: str) -> list[str]:
    """Linux: the fields of /proc/<pid>/stat after the command name ([] once it has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _alive(pid: int) -> bool:
    return _proc_stat(str(pid))[:1] not in ([], ["Z"])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_killed_sweep_takes_its_workers_with_it(vault_root, tmp_path):
    """SIGTERM to a sweep of 2 workers: no orphan trains on after it."""
    cmd = [sys.executable, "-m", "og_marl_inspo.cli", "sweep", "--systems", "bc", "--source", "inspo",
           "--env", "matrix", "--scenarios", "xor", "--datasets", "B", "--seeds", "0-1", "--workers", "2",
           "--train-steps", "1000000", "--rel-dir", vault_root, "--results-dir", str(tmp_path),
           "--no-progress"]
    sweep = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.time() + 300  # two processes importing TensorFlow on a loaded machine
        logs = [tmp_path / f"inspo/matrix/xor/B/bc/seed_{seed}_logs/train.jsonl" for seed in (0, 1)]
        while not all(log.exists() for log in logs):  # both workers are training
            assert sweep.poll() is None and time.time() < deadline, "the sweep did not start training"
            time.sleep(0.5)
        children = [p for p in Path("/proc").glob("[0-9]*") if _proc_stat(p.name)[1:2] == [str(sweep.pid)]]
        workers = [int(p.name) for p in children if b"spawn_main" in (p / "cmdline").read_bytes()]
        assert len(workers) == 2
        sweep.send_signal(signal.SIGTERM)
        sweep.wait(30)
        deadline = time.time() + 30
        while any(_alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.5)
        assert not any(_alive(pid) for pid in workers)
    finally:
        sweep.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sweep_skips_finished_runs_and_table_reads_them(vault_root, tmp_path, capsys):
    args = ["sweep", "--systems", "bc", "--source", "inspo", "--env", "matrix", "--scenarios", "xor",
            "--datasets", "A,B", "--seeds", "0-1", "--train-steps", "50", "--rel-dir", vault_root,
            "--results-dir", str(tmp_path), "--config.evaluation.episodes=50",
            "--config.evaluation.every=50"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.count(": done") == 4
    stamp = (tmp_path / "inspo/matrix/xor/A/bc/seed_0.json").stat().st_mtime_ns
    assert main(args) == 0
    assert ": done" not in capsys.readouterr().out  # everything skipped
    assert (tmp_path / "inspo/matrix/xor/A/bc/seed_0.json").stat().st_mtime_ns == stamp

    assert main(["table", "--results-dir", str(tmp_path), "--source", "inspo"]) == 0
    table = capsys.readouterr().out
    assert "| bc" in table.replace("|  bc", "| bc") or "bc" in table.splitlines()[0]
    assert "(paper: 0.23 ± 0.01)" in table  # XOR B published BC value beside ours
    finals = {}  # dataset -> (returns, entropies) of its seeds
    for path in tmp_path.glob("inspo/matrix/xor/*/bc/seed_*.json"):
        result = json.loads(path.read_text())
        returns, entropies = finals.setdefault(result["dataset"], ([], []))
        returns.append(result["final"]["episode_return_mean"])
        entropies.append(result["final"]["policy_average_entropy"])
    assert main(["table", "--results-dir", str(tmp_path), "--source", "inspo",
                 "--metric", "policy_average_entropy", "--format", "csv"]) == 0
    rows = list(csv.reader(capsys.readouterr().out.strip().splitlines()))[1:]
    means = {row[3]: float(row[5]) for row in rows if row[4] == "bc"}
    assert means == pytest.approx({d: np.mean(e) for d, (_, e) in finals.items()})
    assert means != pytest.approx({d: np.mean(r) for d, (r, _) in finals.items()})

    averaged = {}  # dataset -> per-seed means of the step-0 and final evaluations (--last 2)
    for path in tmp_path.glob("inspo/matrix/xor/*/bc/seed_*.json"):
        result = json.loads(path.read_text())
        ends = [result["evaluations"][0], result["final"]]
        averaged.setdefault(result["dataset"], []).append(np.mean([e["episode_return_mean"] for e in ends]))
    assert main(["table", "--results-dir", str(tmp_path), "--source", "inspo", "--last", "2",
                 "--format", "csv"]) == 0
    rows = list(csv.reader(capsys.readouterr().out.strip().splitlines()))[1:]
    assert {row[3]: float(row[5]) for row in rows if row[4] == "bc"} == pytest.approx(
        {d: np.mean(v) for d, v in averaged.items()})

    out = tmp_path / "marl_eval.json"
    assert main(["export", "marl-eval", "--results-dir", str(tmp_path), "--out", str(out)]) == 0
    exported = json.loads(out.read_text())
    runs = exported["matrix"]["xor_B"]["bc"]
    assert set(runs) == {"seed_0", "seed_1"}
    assert len(runs["seed_0"]["absolute_metrics"]["episode_return"]) == 500


def test_unknown_table_and_system_names(capsys):
    assert main(["reproduce", "inspo-table9"]) == 2
    assert "unknown table 'inspo-table9'" in capsys.readouterr().err
    assert main(["reproduce", "cpa-table1", "--last", "0"]) == 2  # refused before any training
    assert "last must be >= 1, got 0" in capsys.readouterr().err


def test_reproduce_passes_overrides_to_a_figure_and_refuses_them_for_a_table(monkeypatch, capsys):
    from og_marl_inspo import figures

    seen = {}
    monkeypatch.setattr(figures, "reproduce_figure",
                        lambda figure, overrides=(), **_: seen.setdefault(figure, list(overrides)) and "drawn")
    assert main(["reproduce", "cpa-fig4", "--config.system.threshold_weighting=renormalised"]) == 0
    assert seen == {"cpa-fig4": ["system.threshold_weighting=renormalised"]}
    with pytest.raises(SystemExit) as stop:
        main(["reproduce", "cpa-table1", "--config.system.beta=0.5"])
    assert stop.value.code == 2
    assert "apply to train, sweep and reproduce FIGURE only" in capsys.readouterr().err
