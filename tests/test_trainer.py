"""The shared loop: BC learns the data's marginals, runs are reproducible and resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from og_marl_inspo.cli import main as cli_main
from og_marl_inspo.cli import run_config
from og_marl_inspo.figures import joint_policy
from og_marl_inspo.launch import restore, run
from og_marl_inspo.trainer import evaluation_record


def _config(vault_root, dataset="B", steps=600, seed=0, scenario="xor", **system):
    config = run_config("bc", "inspo", "matrix", scenario, dataset, seed, train_steps=steps,
                        rel_dir=vault_root,
                        overrides=[f"system.{k}={v}" for k, v in system.items()])
    with config.unlocked():
        config.evaluation.every = 300
        config.evaluation.episodes = 1000
        config.checkpoint_every = 300
    return config


def test_bc_reproduces_the_data_marginals_on_xor_b(vault_root, tmp_path):
    results = run(_config(vault_root), str(tmp_path), progress=False)
    # Independent sampling of P(A) = 2/3 marginals: 2 * (2/3)(1/3) - 2 (1/3)^2 = 2/9.
    assert results["final"]["episode_return_mean"] == pytest.approx(2 / 9, abs=0.05)
    assert results["final"]["episodes"] == 10_000
    saved = json.loads((tmp_path / "inspo/matrix/xor/B/bc/seed_0.json").read_text())
    for key in ("system", "source", "env", "scenario", "dataset", "seed", "config", "versions",
                "evaluations", "final", "wall_time_s", "train_steps_per_second"):
        assert key in saved
    assert [e["step"] for e in saved["evaluations"]] == [0, 300]
    assert saved["final"]["step"] == 600 and len(saved["final"]["episode_returns"]) == 10_000
    assert saved["config"]["system"]["eval_mode"] == "stochastic"
    # The final checkpoint restores the trained policy: the same final evaluation, and a
    # joint policy that is the product of the two P(A) = 2/3 marginals.
    system, environment = restore(tmp_path / "inspo/matrix/xor/B/bc/seed_0.json")
    assert system.training_step_ctr == 600
    again = evaluation_record(system, environment, 600, 10_000, seed=0)
    assert again["episode_returns"] == saved["final"]["episode_returns"]
    np.testing.assert_allclose(joint_policy(system, environment, 20_000),
                               [[4 / 9, 2 / 9], [2 / 9, 1 / 9]], atol=0.03)


def test_greedy_bc_picks_the_mode_on_xor_b(vault_root, tmp_path):
    results = run(_config(vault_root, eval_mode="greedy"), str(tmp_path), progress=False,
                  checkpoint=False)
    assert results["final"]["episode_return_mean"] == 0.0  # (A, A): both marginals favour A
    assert results["final"]["episode_return_std"] == 0.0


def test_same_config_and_seed_give_the_same_numbers(vault_root, tmp_path):
    one = run(_config(vault_root, steps=150, seed=3), str(tmp_path / "one"), progress=False)
    two = run(_config(vault_root, steps=150, seed=3), str(tmp_path / "two"), progress=False)
    other = run(_config(vault_root, steps=150, seed=4), str(tmp_path / "three"), progress=False)
    assert one["final"]["episode_returns"] == two["final"]["episode_returns"]
    assert one["evaluations"] == two["evaluations"]
    assert one["final"]["episode_returns"] != other["final"]["episode_returns"]


def _train_cmd(vault_root, results_dir, steps):
    return [sys.executable, "-m", "og_marl_inspo.cli", "train", "--system", "bc", "--source", "inspo",
            "--env", "matrix", "--scenario", "xor", "--dataset", "B", "--seed", "1",
            "--train-steps", str(steps), "--rel-dir", vault_root, "--results-dir", str(results_dir),
            "--no-progress", "--config.checkpoint_every=100", "--config.evaluation.every=200",
            "--config.evaluation.episodes=200"]


def test_sigkill_then_restart_ends_with_the_uninterrupted_numbers(vault_root, tmp_path):
    steps = 600
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    assert cli_main(_train_cmd(vault_root, tmp_path / "whole", steps)[3:]) == 0  # in-process reference
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(vault_root, killed_dir, steps), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = killed_dir / "inspo/matrix/xor/B/bc/seed_1_checkpoints"
    deadline = time.time() + 300  # a loaded machine can take minutes to import TensorFlow
    while time.time() < deadline and not list(ckpt_dir.glob("ckpt-*.index")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(ckpt_dir.glob("ckpt-*.index")), "no checkpoint was written before the kill"
    assert not (killed_dir / "inspo/matrix/xor/B/bc/seed_1.json").exists()
    resumed = subprocess.run(_train_cmd(vault_root, killed_dir, steps), env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    whole = json.loads((tmp_path / "whole/inspo/matrix/xor/B/bc/seed_1.json").read_text())
    again = json.loads((killed_dir / "inspo/matrix/xor/B/bc/seed_1.json").read_text())
    assert again["evaluations"] == whole["evaluations"]
    assert again["final"] == whole["final"]


def test_gru_bc_trains_on_windows_with_episode_boundaries(tmp_path):
    """GRU torso over T=4 windows of 3-step episodes: the loss falls and actions stay legal."""
    from og_marl_inspo.data.buffer import ReplayBuffer
    from og_marl_inspo.registry import get_system

    class ThreeStep:  # a tiny partially observed stand-in with an illegal action
        agents, num_actions, observation_shape, state_shape = ["agent_0", "agent_1"], 3, (2,), (2,)

    rng = np.random.default_rng(0)
    length = 300
    legals = np.ones((1, length, 2, 3), np.float32)
    legals[..., 2] = 0.0
    step_in_episode = np.arange(length) % 3
    experience = {
        "observations": np.stack([np.eye(2)[step_in_episode % 2]] * 2, axis=1)[None].astype(np.float32),
        "actions": np.stack([step_in_episode % 2, 1 - step_in_episode % 2], 1)[None].astype(np.int32),
        "rewards": rng.normal(size=(1, length, 2)).astype(np.float32),
        "terminals": np.repeat((step_in_episode == 2)[None, :, None], 2, 2).astype(np.float32),
        "truncations": np.zeros((1, length, 2), np.float32),
        "infos": {"legals": legals, "state": np.zeros((1, length, 2), np.float32)}}
    system = get_system("bc", ThreeStep(), None, torso="gru", hidden_sizes=(16,),
                        learning_rate=0.01)
    buffer = ReplayBuffer(4, 16, seed=0, experience=experience)
    losses = [float(system.train_step(buffer.sample())["policy_loss"]) for _ in range(150)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    system.reset(8)
    actions = system.act(np.zeros((8, 2, 2), np.float32), legals[0, :8], np.random.default_rng(0))
    assert actions.shape == (8, 2) and (actions != 2).all()


def test_og_marl_train_loop_and_keys(vault_root, xor_env):
    from og_marl_inspo.data.buffer import ReplayBuffer
    from og_marl_inspo.registry import get_system

    class Recorder:
        def __init__(self):
            self.logs = []

        def write(self, logs, force=False):
            self.logs.append(dict(logs))

    logger = Recorder()
    system = get_system("bc", xor_env, logger)
    buffer = ReplayBuffer(2, 32, seed=0)
    assert buffer.populate_from_vault("inspo", "matrix", "xor", "B", rel_dir=vault_root)
    system.train(buffer, training_steps=5, evaluation_every=2, num_eval_episodes=4)
    evals = [l for l in logger.logs if "evaluation/mean_episode_return" in l]
    assert [l["evaluation/training_steps"] for l in evals] == [0, 2, 4, 5]
    train = [l for l in logger.logs if "policy_loss" in l]
    assert len(train) == 5 and {"training_steps", "training_sps", "time_for_sampling"} <= set(train[0])
    actions = system.select_actions(*xor_env.reset()[:1], xor_env.reset()[1]["legals"])
    assert list(actions) == ["agent_0", "agent_1"] and actions["agent_0"].shape == ()


def test_a_nan_loss_stops_training(vault_root, xor_env):
    from og_marl_inspo.data.buffer import ReplayBuffer
    from og_marl_inspo.errors import TrainingError
    from og_marl_inspo.registry import get_system
    from og_marl_inspo.trainer import train_run

    system = get_system("bc", xor_env, None)
    system.train_step = lambda experience: {"policy_loss": float("nan")}
    buffer = ReplayBuffer(2, 8, seed=0)
    buffer.populate_from_vault("inspo", "matrix", "xor", "B", rel_dir=vault_root)
    with pytest.raises(TrainingError, match="training diverged at step 0: policy_loss = nan"):
        train_run(system, buffer, xor_env, training_steps=3, evaluation_every=10, evaluation_episodes=2,
                  final_multiplier=1, checkpoint_every=10, seed=0, checkpoint_dir=None, progress=False)


def test_resuming_with_another_config_is_refused(vault_root, tmp_path):
    from og_marl_inspo.errors import TrainingError

    run(_config(vault_root, steps=20), str(tmp_path), progress=False)
    with pytest.raises(TrainingError, match=r"made with another config \(system.learning_rate: 0.001"):
        run(_config(vault_root, steps=20, learning_rate=0.01), str(tmp_path), progress=False)
    longer = run(_config(vault_root, steps=40), str(tmp_path), progress=False)  # more steps: resumes
    assert longer["final"]["step"] == 40


def test_a_resumed_run_reports_steps_per_second_over_all_its_steps(vault_root, tmp_path, monkeypatch):
    """A train step costs 2 ticks of a fake clock: 0.5 steps/s, whether resumed or not."""
    import itertools
    from types import SimpleNamespace

    from og_marl_inspo import trainer

    ticks = itertools.count()
    monkeypatch.setattr(trainer, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks)),
                                                         time=time.time))
    first = run(_config(vault_root, steps=20), str(tmp_path), progress=False)
    resumed = run(_config(vault_root, steps=40), str(tmp_path), progress=False)  # from step 20
    assert first["train_steps_per_second"] == 0.5
    assert resumed["train_steps_per_second"] == 0.5


def test_costly_environments_are_evaluated_in_chunks(xor_env):
    """`max_parallel_episodes` caps the games alive at once; every episode is still played."""
    from og_marl_inspo.registry import get_system
    from og_marl_inspo.trainer import run_episodes

    sizes = []
    original = type(xor_env).batch

    def spy(self, num_envs, seed):
        sizes.append(num_envs)
        return original(self, num_envs, seed)

    xor_env.max_parallel_episodes = 3
    xor_env.batch = spy.__get__(xor_env)
    out = run_episodes(get_system("bc", xor_env, None), xor_env, 8, seed=0)
    assert sizes == [3, 3, 2] and out["episode_returns"].shape == (8,)
