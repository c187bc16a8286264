"""The SMAX stand-in: routing, the CFCQL-style recipe (on fake rollouts) and, where
jaxmarl is installed, the wrapper's contract on the smallest map."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from og_marl_inspo.data import collect
from og_marl_inspo.envs import get_environment, known_environments, smax
from og_marl_inspo.reporting import PAPER_TABLES

try:
    import jaxmarl  # noqa: F401
except ImportError:
    jaxmarl = None
requires_jaxmarl = pytest.mark.skipif(
    jaxmarl is None, reason="jaxmarl is not installed (optional extra: pip install 'og-marl-inspo[smax]')")

UIDS = {"Expert", "Medium", "Medium-Replay", "Mixed"}


def test_smax_maps_route_recipes_and_table_but_stay_out_of_known_environments():
    assert not any(env == "smax" for _, env, _ in known_environments())  # needs jaxmarl to build
    for scenario in smax.SMAX_SCENARIOS:
        assert set(collect.RECIPES[("inspo", "smax", scenario)]) == UIDS
    table = PAPER_TABLES["inspo-table4-smax"]
    assert (table.source, table.metric, table.eval_mode) == ("inspo", "win_rate", "greedy")
    assert {scenario for _, scenario, _ in table.rows} == set(smax.SMAX_SCENARIOS)
    assert {dataset for _, _, dataset in table.rows} == UIDS
    with pytest.raises(ValueError, match="unknown environment inspo/smax/3m"):
        get_environment("inspo", "smax", "3m")


def test_missing_jaxmarl_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jaxmarl", None)
    monkeypatch.setitem(sys.modules, "jaxmarl.environments.smax", None)
    smax.smax_game.cache_clear()
    try:
        with pytest.raises(smax.SMAXUnavailableError, match=r"og-marl-inspo\[smax\]"):
            get_environment("inspo", "smax", "5m_vs_6m")
    finally:
        smax.smax_game.cache_clear()


@pytest.fixture()
def fake_rollouts(monkeypatch):
    """`smax.rollout` replaced: return = 1.05 - epsilon, a win when epsilon < 0.25."""

    def rollout(scenario, episodes, epsilon, seed, **_):
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(episodes):
            length = int(rng.integers(2, 5))
            rewards = np.full(length, (1.05 - epsilon) / length, np.float32)
            out.append({"observations": np.full((length, 3, 4), epsilon, np.float32),
                        "actions": rng.integers(0, 5, (length, 3)).astype(np.int32),
                        "rewards": rewards, "legals": np.ones((length, 3, 10), np.float32),
                        "state": np.zeros((length, 6), np.float32), "won": epsilon < 0.25})
        return out

    monkeypatch.setattr(smax, "rollout", rollout)
    monkeypatch.setattr(collect, "SMAX_EPISODES", 40)
    monkeypatch.setattr(collect, "SMAX_EVAL_EPISODES", 5)
    collect.smax_checkpoints.cache_clear()
    collect._smax_episodes.cache_clear()
    yield
    collect.smax_checkpoints.cache_clear()
    collect._smax_episodes.cache_clear()


def test_recipe_picks_checkpoints_like_cfcql(fake_rollouts):
    plan = collect.smax_plan("5m_vs_6m")
    assert plan["Expert"] == 0.0
    assert plan["Medium"] == 0.4  # the earliest return >= 0.6 x 1.05 = 0.63 is 0.65
    assert plan["Medium-Replay"] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    returns = [p[1] for p in plan["checkpoints"]]
    assert returns == sorted(returns)

    recipes = collect.RECIPES[("inspo", "smax", "5m_vs_6m")]
    rng = np.random.default_rng(0)
    data = {uid: recipes[uid].build(None, rng) for uid in UIDS}
    assert {uid: len(eps) for uid, eps in data.items()} == dict.fromkeys(UIDS, 40)

    def mean_return(uid):
        return np.mean([ep["rewards"].sum() for ep in data[uid]])

    assert mean_return("Expert") > mean_return("Mixed") > mean_return("Medium") > mean_return("Medium-Replay")
    # Mixed: half Medium, half Expert, the same episode indices of each (CFCQL's mixed.py)
    medium_half, expert_half = data["Mixed"][:20], data["Mixed"][20:]
    for m, e in zip(medium_half, expert_half):
        i = next(k for k, ep in enumerate(data["Medium"]) if ep is m)
        assert data["Expert"][i] is e
    # the replay: the oldest checkpoints first, the last SMAX_EPISODES episodes kept
    replay_eps = [float(ep["observations"][0, 0, 0]) for ep in data["Medium-Replay"]]
    assert replay_eps == sorted(replay_eps, reverse=True) and min(replay_eps) == pytest.approx(0.5)


@requires_jaxmarl
def test_wrapper_keeps_the_smac_contract_on_3s_vs_5z():
    env = get_environment("inspo", "smax", "3s_vs_5z", seed=3)
    n, o, a, s = smax.SMAX_SHAPES["3s_vs_5z"]
    assert env.agents == ["agent_0", "agent_1", "agent_2"] and env.num_agents == n
    assert (env.num_actions, env.observation_shape, env.state_shape) == (a, (o,), (s,))
    obs, info = env.reset()
    assert list(obs) == env.agents and list(info["legals"]) == env.agents
    assert obs["agent_0"].dtype == np.float32 and obs["agent_0"].shape == (o,)
    assert info["state"].dtype == np.float32 and info["state"].shape == (s,)
    assert info["legals"]["agent_0"].dtype == np.float32
    assert info["legals"]["agent_0"][smax.STOP_ACTION] == 1.0
    assert not info["legals"]["agent_0"][smax.FIRST_ATTACK:].any()  # enemies start out of range
    with pytest.raises(ValueError, match="agent_0 chose illegal action 5"):
        env.step({agent: 5 for agent in env.agents})

    total, steps = 0.0, 0
    while True:  # everyone stands still: the zealots walk over and win
        obs, rewards, terminals, truncations, info = env.step({agent: smax.STOP_ACTION for agent in env.agents})
        total += float(rewards["agent_0"])
        steps += 1
        assert len({float(r) for r in rewards.values()}) == 1  # the team reward on every agent
        assert not any(bool(t) for t in truncations.values())
        if all(bool(t) for t in terminals.values()):
            break
    assert steps <= env.episode_limit and total == 0.0  # no damage dealt, no win
    assert env.battle_won is False
    assert env.get_stats() == {"battles_won": 0, "battles_game": 1, "win_rate": 0.0}
    with pytest.raises(ValueError, match="call reset"):
        env.step({agent: smax.STOP_ACTION for agent in env.agents})

    batch = env.batch(3, seed=0)
    b_obs, b_legals, b_state = batch.reset()
    assert b_obs.shape == (3, n, o) and b_legals.shape == (3, n, a) and b_state.shape == (3, s)
    assert not np.allclose(b_obs[0], b_obs[1])  # each copy has its own seed
    stop = np.full((3, n), smax.STOP_ACTION)
    b_obs, b_legals, b_state, reward, done = batch.step(stop, np.array([True, False, True]))
    assert not b_obs[1].any() and reward[1] == 0.0 and not done[1]  # a finished episode stays put
    assert b_obs[0].any() and b_obs.dtype == np.float32
    assert batch.stats()["win_rate"].tolist() == [0.0, 0.0, 0.0]


def test_built_smax_vaults_record_their_win_rate(fake_rollouts, monkeypatch, tmp_path, capsys):
    from og_marl_inspo import cli
    from og_marl_inspo.data import vault

    monkeypatch.setattr(collect, "get_environment", lambda *args, **kwargs: None)  # no game needed
    summaries = collect.build_datasets("inspo", "smax", "5m_vs_6m", rel_dir=str(tmp_path))
    # fake wins: epsilon < 0.25, i.e. Expert (0.0) only; Mixed is half Expert
    assert {uid: s["win_rate"] for uid, s in summaries.items()} == {
        "Expert": 1.0, "Medium": 0.0, "Medium-Replay": 0.0, "Mixed": 0.5}
    for uid in UIDS:
        meta = vault.read_metadata(str(tmp_path), "inspo", "smax", "5m_vs_6m", uid)
        assert meta["win_rate"] == summaries[uid]["win_rate"]
        assert meta["episodes"] == 40  # `won` is metadata, not a vault field
    cli.main(["datasets", "list", "--rel-dir", str(tmp_path)])
    listed = [line for line in capsys.readouterr().out.splitlines() if "5m_vs_6m.vlt/Mixed" in line]
    assert len(listed) == 1 and listed[0].endswith(", win rate 0.500")


def test_shared_fire_spends_no_shot_on_an_enemy_already_killed():
    import jax.numpy as jnp

    health = jnp.array([9.0, 45.0, 18.0])  # absolute; the first dies to one shot
    score = health / 45.0
    everyone = jnp.ones((4, 3), bool)
    damage = jnp.full(4, 9.0)
    picks = smax.share_fire(jnp, health, everyone, jnp.ones(4, bool), damage, score)
    assert picks.tolist() == [0, 2, 2, 1]  # one shot kills 0, two kill 2, the rest go on to 1
    # a weapon still cooling down fires at nothing this step, so it claims no kill
    picks = smax.share_fire(jnp, health, everyone, jnp.array([False, True, True, True]), damage, score)
    assert picks.tolist() == [0, 0, 2, 2]
    # only enemies in range count; with every one in range already dead, the best in range
    in_range = jnp.array([[True, False, False]] * 2 + [[False, False, False], [False, True, True]])
    picks = smax.share_fire(jnp, health, in_range, jnp.ones(4, bool), damage, score)
    assert picks[:2].tolist() == [0, 0] and int(picks[3]) == 2


@requires_jaxmarl
def test_5m_vs_6m_scripted_expert_wins_where_face_to_face_loses():
    rally = smax.SMAX_TACTICS["5m_vs_6m"]
    assert rally.rally[2] > 0
    _, won = smax.episode_stats(smax.rollout("5m_vs_6m", 250, 0.0, seed=5))
    _, face_to_face = smax.episode_stats(
        smax.rollout("5m_vs_6m", 250, 0.0, seed=5, tactics=rally._replace(rally=(0.0, 0.0, 0.0))))
    assert won > 0.4 and face_to_face < 0.05


def test_smax_launcher_layers_inspo_smax_settings_on_its_smac_ones():
    from pathlib import Path

    from og_marl_inspo.config import load_config_file

    root = Path(__file__).resolve().parents[1]
    assert '.py:smac_v1/smax/$MAP"' in (root / "launchers/smax/smax_map.sh").read_text()
    smac = load_config_file(f"{root}/systems/inspo.py:smac_v1/5m_vs_6m")
    stand_in = load_config_file(f"{root}/systems/inspo.py:smac_v1/smax/5m_vs_6m")
    assert (smac.system.alpha, smac.system.rho_max, smac.system.policy_lr) == ("auto", 100.0, 3e-4)
    assert (stand_in.system.alpha, stand_in.system.rho_max, stand_in.system.policy_lr) == ("1.0", 2.0, 3e-5)
    assert stand_in.system.torso == "gru" and stand_in.replay.sequence_length == 20  # the rest is SMAC's
    bc = [load_config_file(f"{root}/systems/bc.py:{arg}").to_dict() for arg in ("smac_v1/5m_vs_6m",
                                                                            "smac_v1/smax/5m_vs_6m")]
    assert bc[0] == bc[1]  # systems without SMAX settings run exactly as on SMAC
