"""pymarl import/export round trip and refusals; grid-game rendering (GIF, strip, joint actions)."""

from __future__ import annotations

import numpy as np
import pytest

from og_marl_inspo.cli import main as cli_main
from og_marl_inspo.data.vault import available_uids, read_vault

BRIDGE = ["--source", "inspo", "--env", "bridge", "--scenario", "bridge"]


@pytest.fixture(scope="module")
def bridge_root(tmp_path_factory):
    """A rel_dir with a small Bridge dataset `Small`: 3 Optimal + 2 uniform random episodes."""
    from og_marl_inspo.data.collect import experience_from_episodes
    from og_marl_inspo.data.vault import write_vault
    from og_marl_inspo.envs import bridge

    root = str(tmp_path_factory.mktemp("vaults"))
    episodes = bridge.optimal_and_random(3, 2)(bridge.Bridge(), np.random.default_rng(0))
    write_vault(experience_from_episodes(episodes), root, "inspo", "bridge", "bridge", "Small")
    return root


@pytest.fixture(scope="module")
def exported(bridge_root, tmp_path_factory):
    """The pymarl arrays of `Small`, written by `datasets export`."""
    out = tmp_path_factory.mktemp("npz") / "small.npz"
    assert cli_main(["datasets", "export", "--format", "pymarl", *BRIDGE, "--dataset", "Small",
                     "--rel-dir", bridge_root, "--out", str(out)]) == 0
    with np.load(out) as npz:
        return {k: npz[k] for k in npz.files}


def _import(arrays, path, rel_dir, uid="Back", capsys=None):
    np.savez(path, **arrays)
    code = cli_main(["datasets", "import", "--format", "pymarl", *BRIDGE, "--dataset", uid,
                     "--rel-dir", str(rel_dir), str(path)])
    return code, (capsys.readouterr().err.strip() if capsys else "")


# ------------------------------------------------------------------ import / export
def test_export_layout_and_round_trip_is_exact(bridge_root, exported, tmp_path):
    original = read_vault(bridge_root, "inspo", "bridge", "bridge", "Small")
    length = original["actions"].shape[1]
    lengths = exported["filled"][..., 0].sum(axis=1)
    assert exported["obs"].shape == (5, lengths.max() + 1, 2, 8)
    assert exported["actions"].shape[-1] == 1 and exported["avail_actions"].shape[-1] == 5
    assert lengths.sum() == length and exported["terminated"].sum() == 5
    # terminated is set exactly on each episode's last step; the slot after it is padding
    for e, n in enumerate(lengths):
        assert exported["terminated"][e, n - 1, 0] == 1 and exported["filled"][e, n, 0] == 0

    code, _ = _import(exported, tmp_path / "a.npz", tmp_path)
    assert code == 0
    back = read_vault(str(tmp_path), "inspo", "bridge", "bridge", "Back")
    for key in ("observations", "actions", "rewards", "terminals", "truncations"):
        assert back[key].dtype == original[key].dtype
        np.testing.assert_array_equal(back[key], original[key], err_msg=key)
    for key in ("legals", "state"):
        np.testing.assert_array_equal(back["infos"][key], original["infos"][key], err_msg=key)


def test_import_follows_pymarl_slots(exported, tmp_path):
    """pymarl fills the slot after the last step (final observation) and leaves time-limit
    ends without `terminated`: both episodes keep exactly their steps."""
    arrays = {k: v.copy() for k, v in exported.items()}
    steps = arrays["filled"][..., 0].sum(axis=1)
    for e, n in enumerate(steps):
        arrays["filled"][e, n] = 1  # the final-observation slot, as pymarl writes it
        arrays["actions"][e, n] = 0
    arrays["terminated"][1] = 0  # episode 1 ended by the time limit
    code, _ = _import(arrays, tmp_path / "p.npz", tmp_path)
    assert code == 0
    back = read_vault(str(tmp_path), "inspo", "bridge", "bridge", "Back")
    ends = np.flatnonzero(back["terminals"][0, :, 0])
    np.testing.assert_array_equal(np.diff(np.concatenate([[-1], ends])), steps)


def _wrong_obs_size(a):
    a["obs"] = a["obs"][..., :7]


def _wrong_action_count(a):
    a["avail_actions"] = a["avail_actions"][..., :4]


def _wrong_state_size(a):
    a["state"] = np.concatenate([a["state"], a["state"][..., :1]], axis=-1)


def _action_out_of_range(a):
    a["actions"][0, 1, 0, 0] = 5


def _illegal_action(a):
    taken = a["actions"][0, 2, 1, 0]
    a["avail_actions"][0, 2, 1, taken] = 0


def _nan_reward(a):
    a["reward"][1, 0, 0] = np.nan


def _missing_state(a):
    del a["state"]


@pytest.mark.parametrize("mutate, words", [
    (_wrong_obs_size, "array obs: shape (5, "),
    (_wrong_action_count, "array avail_actions: shape"),
    (_wrong_state_size, "array state: shape"),
    (_action_out_of_range, "array actions: 1 values outside [0, 5) (e.g. 5)"),
    (_illegal_action, "array actions: 1 actions not legal under avail_actions (e.g. episode 0, step 2, agent 1"),
    (_nan_reward, "array reward: 1 NaN or inf values"),
    (_missing_state, "array state: missing"),
])
def test_bad_pymarl_files_are_refused_with_one_line(exported, tmp_path, capsys, mutate, words):
    arrays = {k: v.copy() for k, v in exported.items()}
    mutate(arrays)
    code, err = _import(arrays, tmp_path / "bad.npz", tmp_path, capsys=capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and "bad.npz: " in err and words in err, err
    assert available_uids(str(tmp_path), "inspo", "bridge", "bridge") == []  # nothing written


def test_import_does_not_replace_a_dataset_unasked(bridge_root, exported, tmp_path, capsys):
    code, err = _import(exported, tmp_path / "s.npz", bridge_root, uid="Small", capsys=capsys)
    assert code == 2 and "Small: dataset already exists" in err


# ------------------------------------------------------------------ render
def _gif_frames(path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.n_frames


def test_render_dataset_episode(bridge_root, tmp_path, capsys):
    data = read_vault(bridge_root, "inspo", "bridge", "bridge", "Small")
    steps = np.diff(np.concatenate([[-1], np.flatnonzero(data["terminals"][0, :, 0])]))
    out = tmp_path / "ep.gif"
    assert cli_main(["render", *BRIDGE, "--dataset", "Small", "--episode", "1", "--rel-dir",
                     bridge_root, "--out", str(out)]) == 0
    assert f"{steps[1] + 1} frames" in capsys.readouterr().out  # every step plus the end
    assert _gif_frames(out) == steps[1] + 1
    assert (tmp_path / "ep.png").stat().st_size > 0
    assert cli_main(["render", *BRIDGE, "--dataset", "Small", "--episode", "5", "--rel-dir",
                     bridge_root, "--out", str(out)]) == 2
    assert "no episode 5; the dataset holds episodes 0 to 4" in capsys.readouterr().err


def test_render_trained_system_from_its_checkpoint(tmp_path, capsys):
    from og_marl_inspo.cli import run_config
    from og_marl_inspo.data.collect import experience_from_episodes
    from og_marl_inspo.data.vault import write_vault
    from og_marl_inspo.envs import sensor
    from og_marl_inspo.launch import run
    from og_marl_inspo.render import joint_distribution, restore_system

    rel_dir = str(tmp_path / "vaults")
    episodes = sensor.expert_and_random(2, 0)(sensor.Sensor(), np.random.default_rng(0))
    write_vault(experience_from_episodes(episodes), rel_dir, "cpa", "sensor", "sensor", "Tiny")
    config = run_config("bc", "cpa", "sensor", "sensor", "Tiny", 0, train_steps=3, rel_dir=rel_dir,
                        overrides=["system.hidden_sizes=(8,)", "system.jit_compile=false",
                                   "evaluation.episodes=2", "evaluation.final_multiplier=1"])
    run(config, str(tmp_path), progress=False)
    checkpoint = tmp_path / "cpa/sensor/sensor/Tiny/bc/seed_0_checkpoints"
    sensor_args = ["--source", "cpa", "--env", "sensor", "--scenario", "sensor"]
    assert cli_main(["render", *sensor_args, "--system", "bc", "--checkpoint", str(checkpoint),
                     "--out", str(tmp_path / "policy")]) == 0
    assert "policy.gif: 11 frames" in capsys.readouterr().out  # 10 steps, plus the end
    assert _gif_frames(tmp_path / "policy.gif") == 11
    for name in ("policy.png", "policy_joint.png"):
        assert (tmp_path / name).stat().st_size > 0

    system, environment = restore_system(checkpoint, "bc", "cpa", "sensor", "sensor")
    obs, info = environment.reset()
    legals = np.stack(list(info["legals"].values()))
    marginals = joint_distribution(system, np.stack(list(obs.values())), legals, samples=200)
    assert marginals.shape == (15, 9)
    np.testing.assert_allclose(marginals.sum(axis=1), 1.0)
    assert marginals[legals == 0].sum() == 0.0  # corner sensors never scan off the map
    with pytest.raises(ValueError, match="a checkpoint of system 'bc', not 'inspo'"):
        restore_system(checkpoint, "inspo", "cpa", "sensor", "sensor")


def test_bridge_joint_actions_at_the_papers_states():
    from og_marl_inspo.envs import get_environment
    from og_marl_inspo.registry import get_system
    from og_marl_inspo.render import figure_states, joint_distribution

    environment = get_environment("inspo", "bridge", "bridge")
    states = figure_states("bridge", environment, episode={})
    # CPA Fig. 5: the start, then (1,3)/(1,4) after (right, right), (1,1)/(1,2) after (left, left)
    assert [tuple(obs[0, [0, 1, 4, 5]]) for _, obs, _ in states] == [
        (1, 2, 1, 3), (1, 3, 1, 4), (1, 1, 1, 2)]
    system = get_system("bc", environment, None, seed=0, hidden_sizes=(8,))
    _, obs, legals = states[0]
    sampled = joint_distribution(system, obs, legals, samples=500)
    assert sampled.shape == (5, 5) and sampled.sum() == pytest.approx(1.0)
    assert (sampled > 0).sum() > 1
    system.eval_mode = "greedy"
    assert joint_distribution(system, obs, legals, samples=50).max() == 1.0  # one joint action
