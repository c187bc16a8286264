"""Vaults in OG-MARL's layout, the dataset recipes, validation of bad input, the buffer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from og_marl_inspo.batch import unpack
from og_marl_inspo.cli import main as cli_main
from og_marl_inspo.data.buffer import ReplayBuffer
from og_marl_inspo.data.collect import RECIPES, build_datasets, experience_from_episodes
from og_marl_inspo.data.vault import (DataError, episode_returns, joint_action_frequencies, read_vault,
                                      summary, write_vault)
from og_marl_inspo.envs import get_environment


def _xor_experience(uid="B"):
    env = get_environment("inspo", "matrix", "xor")
    episodes = RECIPES[("inspo", "matrix", "xor")][uid].build(env, np.random.default_rng(0))
    return experience_from_episodes(episodes)


def test_vault_has_og_marl_structure(vault_root):
    meta = json.loads((Path(vault_root) / "inspo/matrix/xor.vlt/B/metadata.json").read_text())
    assert meta["structure_dtype"] == {
        "actions": "int32", "observations": "float32", "rewards": "float32",
        "terminals": "float32", "truncations": "float32",
        "infos": {"legals": "float32", "state": "float32"}}
    assert meta["recipe"] == "inspo/matrix/xor/B" and meta["seed"] == 0
    data = read_vault(vault_root, "inspo", "matrix", "xor", "B")
    assert data["observations"].shape == (1, 6000, 2, 1)
    assert data["actions"].shape == (1, 6000, 2) and data["actions"].dtype == np.int32
    assert data["infos"]["legals"].shape == (1, 6000, 2, 2)
    assert data["infos"]["state"].shape == (1, 6000, 1)
    assert (data["terminals"] == 1).all()  # one-step episodes


def test_round_trip_is_exact(tmp_path):
    experience = _xor_experience("C")
    write_vault(experience, str(tmp_path), "inspo", "matrix", "xor", "C")
    back = read_vault(str(tmp_path), "inspo", "matrix", "xor", "C")
    for key in ("observations", "actions", "rewards", "terminals", "truncations"):
        np.testing.assert_array_equal(back[key][0], experience[key])
    np.testing.assert_array_equal(back["infos"]["legals"][0], experience["infos"]["legals"])
    assert not list((tmp_path / "inspo/matrix/xor.vlt").glob(".*"))  # no temporary folders left


def test_xor_datasets_hold_the_specified_mix(vault_root):
    expected = {"A": {(0, 1): 0.5, (1, 0): 0.5},
                "B": {(0, 0): 1 / 3, (0, 1): 1 / 3, (1, 0): 1 / 3},
                "C": {(0, 0): 0.25, (0, 1): 0.25, (1, 0): 0.25, (1, 1): 0.25}}
    for uid, mix in expected.items():
        freqs = joint_action_frequencies(read_vault(vault_root, "inspo", "matrix", "xor", uid))
        assert freqs.keys() == mix.keys()
        for joint, share in mix.items():
            assert freqs[joint] == pytest.approx(share, abs=1e-12)


def test_m_ne_counts_and_means(vault_root):
    imbalanced = read_vault(vault_root, "inspo", "matrix", "m_ne", "Imbalanced")
    freqs = joint_action_frequencies(imbalanced)
    assert round(freqs[(0, 0)] * 9000) == 5760 and round(freqs[(0, 1)] * 9000) == 720
    assert round(freqs[(1, 2)] * 9000) == 90
    assert summary(imbalanced)["return_mean"] == pytest.approx(-3.3, abs=1e-9)
    balanced = summary(read_vault(vault_root, "inspo", "matrix", "m_ne", "Balanced"))
    assert balanced["return_mean"] == pytest.approx(-85 / 9, abs=1e-9)
    assert balanced["episodes"] == 9000


def test_permutation_datasets_follow_the_template():
    env = get_environment("cpa", "matrix", "permutation")
    medium = experience_from_episodes(RECIPES[("cpa", "matrix", "permutation")]["Medium"].build(
        env, np.random.default_rng(0)))
    assert medium["actions"].shape == (9600, 4)
    marginal = np.stack([np.bincount(medium["actions"][:, i], minlength=4) / 9600 for i in range(4)])
    assert np.abs(marginal - 0.25).max() < 0.02
    assert abs(medium["rewards"][:, 0].mean() - 0.546875) < 0.02


def test_same_command_writes_the_same_data(tmp_path):
    build_datasets("inspo", "matrix", "xor", ["B"], rel_dir=str(tmp_path / "one"))
    build_datasets("inspo", "matrix", "xor", ["B"], rel_dir=str(tmp_path / "two"))
    one = read_vault(str(tmp_path / "one"), "inspo", "matrix", "xor", "B")
    two = read_vault(str(tmp_path / "two"), "inspo", "matrix", "xor", "B")
    np.testing.assert_array_equal(one["actions"], two["actions"])
    assert not np.array_equal(one["actions"][0, :50], np.sort(one["actions"][0, :50], axis=0))


# ------------------------------------------------------------------ bad input
def _bad_vault(tmp_path, mutate):
    experience = _xor_experience("B")
    mutate(experience)
    write_vault(experience, str(tmp_path), "inspo", "matrix", "xor", "B")
    return str(tmp_path)


def _obs_too_wide(e):
    e["observations"] = np.zeros(e["observations"].shape[:-1] + (3,), np.float32)


def _three_agents(e):
    for key in ("observations", "actions", "rewards", "terminals", "truncations"):
        e[key] = np.concatenate([e[key], e[key][:, :1]], axis=1)
    e["infos"]["legals"] = np.concatenate([e["infos"]["legals"], e["infos"]["legals"][:, :1]], 1)


def _wrong_actions(e):
    e["infos"]["legals"] = np.ones(e["infos"]["legals"].shape[:-1] + (3,), np.float32)


def _wrong_state(e):
    e["infos"]["state"] = np.ones((len(e["actions"]), 4), np.float32)


def _action_out_of_range(e):
    e["actions"][7, 1] = 5


def _nan_reward(e):
    e["rewards"][3] = np.nan


def _inf_reward(e):
    e["rewards"][4] = np.inf


@pytest.mark.parametrize("mutate, field, words", [
    (_obs_too_wide, "observations", "observation size 3 in the vault, environment gives 1"),
    (_three_agents, "observations", "agents 3 in the vault, environment gives 2"),
    (_wrong_actions, "infos.legals", "actions 3 in the vault, environment gives 2"),
    (_wrong_state, "infos.state", "state size 4 in the vault, environment gives 1"),
    (_action_out_of_range, "actions", "values outside [0, 2)"),
    (_nan_reward, "rewards", "NaN or inf"),
    (_inf_reward, "rewards", "NaN or inf"),
])
def test_bad_vaults_stop_with_one_line(tmp_path, capsys, mutate, field, words):
    rel_dir = _bad_vault(tmp_path, mutate)
    code = cli_main(["datasets", "info", "--source", "inspo", "--env", "matrix", "--scenario", "xor",
                     "--dataset", "B", "--rel-dir", rel_dir])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert f"xor.vlt/B: field {field}: " in err and words in err


def test_missing_vault_and_unknown_uid(tmp_path, vault_root, capsys):
    args = ["datasets", "info", "--source", "inspo", "--env", "matrix", "--scenario", "xor"]
    assert cli_main(args + ["--dataset", "B", "--rel-dir", str(tmp_path)]) == 2
    assert "xor.vlt: vault not found; build it with" in capsys.readouterr().err
    assert cli_main(args + ["--dataset", "D", "--rel-dir", vault_root]) == 2
    assert "xor.vlt/D: unknown dataset uid 'D'; available: A, B, C" in capsys.readouterr().err


def test_empty_vault_is_refused(tmp_path):
    import flashbax as fbx
    from flashbax.vault import Vault

    row = {k: v[0] for k, v in _xor_experience("B").items() if k != "infos"}
    row["infos"] = {k: v[0] for k, v in _xor_experience("B")["infos"].items()}
    buffer = fbx.make_trajectory_buffer(add_batch_size=1, sample_batch_size=1, sample_sequence_length=1,
                                        period=1, min_length_time_axis=1, max_length_time_axis=4)
    Vault("inspo/matrix/xor.vlt", experience_structure=buffer.init(row).experience,
          rel_dir=str(tmp_path), vault_uid="E")
    with pytest.raises(DataError, match=r"xor.vlt/E: field vault_index: the vault is empty"):
        read_vault(str(tmp_path), "inspo", "matrix", "xor", "E")


def test_cli_error_has_no_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "og_marl_inspo.cli", "datasets", "info", "--source",
                          "inspo", "--env", "matrix", "--scenario", "xor", "--dataset", "B",
                          "--rel-dir", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("og-marl-inspo: error: ") and "vault not found" in out.stderr


# ---------------------------------------------------------------------- buffer
def test_buffer_windows_are_seeded_and_contiguous():
    length = 50
    experience = {"observations": np.arange(length, dtype=np.float32).reshape(1, length, 1, 1),
                  "actions": np.zeros((1, length, 1), np.int32),
                  "rewards": np.zeros((1, length, 1), np.float32),
                  "terminals": np.zeros((1, length, 1), np.float32),
                  "truncations": np.zeros((1, length, 1), np.float32),
                  "infos": {"legals": np.ones((1, length, 1, 2), np.float32),
                            "state": np.arange(length, dtype=np.float32).reshape(1, length, 1)}}
    one = ReplayBuffer(sequence_length=5, batch_size=64, seed=1, experience=experience)
    two = ReplayBuffer(sequence_length=5, batch_size=64, seed=1, experience=experience)
    first, again = one.sample(), two.sample()
    np.testing.assert_array_equal(first["observations"], again["observations"])
    obs = first["observations"][..., 0, 0]  # (B, T)
    assert obs.shape == (64, 5) and first["infos"]["legals"].shape == (64, 5, 1, 2)
    np.testing.assert_array_equal(np.diff(obs, axis=1), 1.0)  # consecutive rows
    assert obs[:, 0].min() >= 0 and obs[:, -1].max() <= length - 1
    assert not np.array_equal(one.sample()["observations"], first["observations"])
    resumed = ReplayBuffer(sequence_length=5, batch_size=64, seed=1, experience=experience)
    resumed.samples_drawn = 1  # a resumed run sets the counter back: batch k is the same
    np.testing.assert_array_equal(resumed.sample()["observations"], two.sample()["observations"])


def test_buffer_flags_the_episodes_that_reach_the_time_limit_as_timeouts(tmp_path):
    """Bridge episodes of 50 steps (random play) end in a timeout, 8-step optimal ones at the
    goal; the vault records both as terminals, the buffer adds a truncation to the first."""
    from og_marl_inspo.envs import bridge

    env = get_environment("cpa", "bridge", "bridge")
    rng = np.random.default_rng(0)
    episodes = [bridge.rollout(env, policy, rng) for policy in
                (bridge.optimal_policy, bridge.random_policy, bridge.optimal_policy, bridge.random_policy)]
    lengths = [len(ep["actions"]) for ep in episodes]
    assert lengths[0] == lengths[2] == 8 and lengths[1] == lengths[3] == env.episode_limit
    write_vault(experience_from_episodes(episodes), str(tmp_path), "cpa", "bridge", "bridge", "Mix")
    buffer = ReplayBuffer(2, 4, seed=0)
    buffer.populate_from_vault("cpa", "bridge", "bridge", "Mix", rel_dir=str(tmp_path), environment=env)
    ends = np.cumsum(lengths) - 1
    flagged = np.flatnonzero(buffer.experience["truncations"][0, :, 0])
    assert flagged.tolist() == [ends[1], ends[3]]
    plain = read_vault(str(tmp_path), "cpa", "bridge", "bridge", "Mix")
    np.testing.assert_array_equal(buffer.experience["terminals"], plain["terminals"])
    np.testing.assert_allclose(episode_returns(buffer.experience), episode_returns(plain))  # 4 episodes
    window = {k: (v[:, ends[1] - 1:ends[1] + 1] if not isinstance(v, dict)
                  else {kk: vv[:, ends[1] - 1:ends[1] + 1] for kk, vv in v.items()})
              for k, v in buffer.experience.items()}
    assert unpack(window).timeouts.numpy().tolist() == [[0.0, 1.0]]


def test_sequence_longer_than_data_is_refused():
    with pytest.raises(ValueError, match="replay.sequence_length 10 is longer than the dataset"):
        ReplayBuffer(10, 4, experience=_to_batch(_xor_experience("A"), 5))


def _to_batch(experience, length):
    return {k: (v[None, :length] if not isinstance(v, dict) else {kk: vv[None, :length] for kk, vv in v.items()})
            for k, v in experience.items()}


def test_og_marl_reads_our_vaults_when_installed(vault_root, monkeypatch):
    """OG-MARL's own FlashbaxReplayBuffer samples our vault (skipped where OG-MARL is absent)."""
    replay_buffers = pytest.importorskip("og_marl.replay_buffers")
    monkeypatch.chdir(Path(vault_root).parent)
    buffer = replay_buffers.FlashbaxReplayBuffer(sequence_length=2, batch_size=8, seed=0)
    assert buffer.populate_from_vault("inspo", "matrix", "xor", "B", rel_dir=Path(vault_root).name)
    batch = buffer.sample()
    assert batch["observations"].shape == (8, 2, 2, 1) and batch["infos"]["legals"].shape == (8, 2, 2, 2)
