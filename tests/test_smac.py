"""SMAC v1 without StarCraft II: a fake StarCraft2Env, and locally made CFCQL-layout zips."""

from __future__ import annotations

import sys
import zipfile

import numpy as np
import pytest

from og_marl_inspo.envs import get_environment, known_environments
from og_marl_inspo.envs.smac import SMACv1, smac_v1_environments
from og_marl_inspo.errors import DataError

N, O, A, S, LIMIT = 5, 55, 12, 98, 70  # 5m_vs_6m (og_marl_contract.md 6.1)
N_ENEMIES = A - 6


class FakeStarCraft2Env:
    """smac's StarCraft2Env interface with 5m_vs_6m sizes and toy rules.

    Every attack takes one hit point off a 60-point enemy team; the battle is won when
    it reaches zero. agent_4 dies after `death_step` steps (then only no-op is legal).
    Like smac, `step` asserts that each action is available.
    """

    def __init__(self, map_name="5m_vs_6m", seed=None, death_step=3):
        self.map_name, self.seed_value, self.death_step = map_name, seed, death_step
        self.n_agents, self.n_actions, self.episode_limit = N, A, LIMIT
        self.battles_won = self.battles_game = self.timeouts = 0
        self.steps_taken = 0  # over the game's whole life
        self.received = []
        self._t, self._enemy_hp = 0, 60

    def reset(self):
        self._t, self._enemy_hp = 0, 60
        return self.get_obs(), self.get_state()

    def _alive(self, i):
        return not (i == N - 1 and self._t >= self.death_step)

    def get_avail_agent_actions(self, i):
        if not self._alive(i):
            return [1] + [0] * (A - 1)
        return [0] + [1] * (A - 1)

    def get_avail_actions(self):
        return [self.get_avail_agent_actions(i) for i in range(N)]

    def step(self, actions):
        for i, a in enumerate(actions):
            assert self.get_avail_agent_actions(i)[a] == 1, "unavailable action"
        self.received.append(list(actions))
        self.steps_taken += 1
        self._t += 1
        hits = sum(1 for a in actions if a >= 6)
        self._enemy_hp -= hits
        info = {"battle_won": False, "dead_allies": 0 if self._t < self.death_step else 1,
                "dead_enemies": 0}
        if self._enemy_hp <= 0:
            self.battles_won += 1
            self.battles_game += 1
            info["battle_won"] = True
            return 20.0, True, info
        if self._t >= self.episode_limit:
            self.battles_game += 1
            self.timeouts += 1
            return 0.1 * hits, True, info
        return 0.1 * hits, False, info

    def get_obs(self):
        return [np.full(O, self._t + i, dtype=np.float32) for i in range(N)]

    def get_obs_size(self):
        return O

    def get_state(self):
        return np.full(S, self._enemy_hp, dtype=np.float64)  # smac may hand back float64

    def get_state_size(self):
        return S

    def get_env_info(self):
        return {"state_shape": S, "obs_shape": O, "n_actions": A, "n_agents": N,
                "episode_limit": LIMIT}

    def get_stats(self):
        return {"battles_won": self.battles_won, "battles_game": self.battles_game,
                "battles_draw": 0, "win_rate": self.battles_won / max(self.battles_game, 1),
                "timeouts": self.timeouts, "restarts": 0}

    def close(self):
        pass


def attack(legals):
    """Highest legal action per agent (an attack when alive, no-op when dead)."""
    legals = np.asarray(legals)
    return legals.shape[-1] - 1 - np.argmax(legals[..., ::-1], axis=-1)


def stop(legals):
    """Stop (1) when alive, no-op when dead: never wins, so the time limit ends it."""
    return np.where(np.asarray(legals)[..., 1] > 0, 1, 0)


@pytest.fixture()
def env():
    return SMACv1("5m_vs_6m", seed=3, env_factory=FakeStarCraft2Env)


def test_wrapper_contract(env):
    assert env.agents == [f"agent_{i}" for i in range(N)]
    assert (env.num_agents, env.num_actions, env.observation_shape, env.state_shape) == (N, A, (O,), (S,))
    assert env._game.map_name == "5m_vs_6m" and env._game.seed_value == 3
    obs, info = env.reset()
    assert list(obs) == env.agents and list(info["legals"]) == env.agents
    assert all(o.dtype == np.float32 and o.shape == (O,) for o in obs.values())
    assert all(l.dtype == np.float32 and l.shape == (A,) for l in info["legals"].values())
    assert info["state"].dtype == np.float32 and info["state"].shape == (S,)
    legals = np.stack(list(info["legals"].values()))
    actions = {agent: np.int32(a) for agent, a in zip(env.agents, attack(legals))}
    obs, rewards, terminals, truncations, info = env.step(actions)
    for d in (obs, rewards, terminals, truncations, info["legals"]):
        assert list(d) == env.agents
    assert all(r.dtype == np.float32 and r.shape == () for r in rewards.values())
    assert len({float(r) for r in rewards.values()}) == 1  # the team reward, to every agent
    assert all(t.dtype == np.bool_ and t.shape == () and not t for t in terminals.values())
    assert all(t.dtype == np.bool_ and not t for t in truncations.values())
    assert set(info) == {"legals", "state"}


def test_illegal_actions_never_reach_the_game(env):
    env.reset()
    with pytest.raises(ValueError, match="agent_0 chose illegal action 0"):
        env.step({agent: 0 for agent in env.agents})  # no-op is illegal while alive
    with pytest.raises(ValueError, match="illegal action 12"):
        env._step(np.array([12, 6, 6, 6, 6]))  # the batched path checks too
    assert env._game.received == []
    for _ in range(3):  # agent_4 dies: afterwards only its no-op is legal
        env._step(attack(env._legals_now()))
    with pytest.raises(ValueError, match="agent_4 chose illegal action 6"):
        env._step(np.array([6, 6, 6, 6, 6]))
    assert len(env._game.received) == 3


def test_win_is_reported(env):
    obs, info = env.reset()
    legals, done, steps = np.stack(list(info["legals"].values())), False, 0
    while not done:
        obs, rewards, terminals, truncations, info = env.step(
            dict(zip(env.agents, attack(legals))))
        legals = np.stack(list(info["legals"].values()))
        done, steps = all(terminals.values()), steps + 1
        assert not any(truncations.values())
    assert steps < LIMIT and env.battle_won is True
    assert env.get_stats()["battles_won"] == 1 and env.get_stats()["win_rate"] == 1.0
    env.reset()
    assert env.battle_won is False  # the new episode has no outcome yet


def test_time_limit_is_a_terminal(env):
    _, info = env.reset()
    legals = np.stack(list(info["legals"].values()))
    for t in range(1, LIMIT + 1):
        _, _, terminals, truncations, info = env.step(dict(zip(env.agents, stop(legals))))
        legals = np.stack(list(info["legals"].values()))
        assert all(terminals.values()) == (t == LIMIT)
        assert not any(truncations.values())
    assert env.battle_won is False and env.get_stats()["timeouts"] == 1


def test_batch_reports_per_episode_win_rate(env):
    from og_marl_inspo.trainer import run_episodes

    class Half:
        """Attacks in even-numbered episodes, stops in odd ones."""

        def reset(self, n):
            pass

        def act(self, obs, legals, rng, state):
            out = stop(legals)
            out[::2] = attack(legals[::2])
            return out

    result = run_episodes(Half(), env, 4, seed=11)
    np.testing.assert_array_equal(result["win_rate"], [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(result["episode_lengths"][1::2], [LIMIT, LIMIT])
    assert [e._game.seed_value for e in env.batch(4, 0).envs] == [11, 12, 13, 14]  # reused games
    again = run_episodes(Half(), env, 2, seed=5)
    np.testing.assert_array_equal(again["win_rate"], [1.0, 0.0])


def test_missing_smac_names_both_pieces(monkeypatch):
    monkeypatch.setitem(sys.modules, "smac", None)  # import smac -> ImportError
    monkeypatch.delitem(sys.modules, "smac.env", raising=False)
    with pytest.raises(ValueError) as err:
        get_environment("cfcql", "smac_v1", "5m_vs_6m")
    message = str(err.value)
    assert "oxwhirl/smac" in message and "SC2PATH" in message and "StarCraft II" in message
    assert "\n" not in message
    assert isinstance(err.value, ImportError)


def test_smac_maps_route_but_stay_out_of_known_environments():
    known = set(known_environments())
    assert not any(env_name == "smac_v1" for _, env_name, _ in known)
    assert ("cfcql", "smac_v1", "6h_vs_8z") in smac_v1_environments()
    assert ("og_marl", "smac_v1", "5m_vs_6m") in smac_v1_environments()


# --------------------------------------------------------------------------- download
def _make_zip(tmp_path, name, obs_size):
    """A zip in OG-MARL's cfcql layout (`5m_vs_6m.vlt/Medium/...`) with one small vault."""
    from og_marl_inspo.data.vault import write_vault

    L, rng = 6, np.random.default_rng(0)
    terminals = np.zeros((L, N), np.float32)
    terminals[[2, 5]] = 1.0
    experience = {
        "observations": rng.normal(size=(L, N, obs_size)).astype(np.float32),
        "actions": rng.integers(1, A, size=(L, N)),
        "rewards": np.ones((L, N), np.float32),
        "terminals": terminals,
        "truncations": np.zeros((L, N), np.float32),
        "infos": {"legals": np.ones((L, N, A), np.float32),
                  "state": rng.normal(size=(L, S)).astype(np.float32)},
    }
    src = tmp_path / f"src-{name}"
    write_vault(experience, str(src), "cfcql", "smac_v1", "5m_vs_6m", "Medium")
    base = src / "cfcql" / "smac_v1"
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((base / "5m_vs_6m.vlt").rglob("*")):
            zf.write(path, path.relative_to(base).as_posix())
    return archive


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zips")
    return {"good": _make_zip(tmp, "good", O), "bad": _make_zip(tmp, "bad", O - 1)}


def test_download_extracts_verifies_and_skips(tmp_path, zips, capsys):
    from og_marl_inspo.data.importers import download_cfcql, download_url
    from og_marl_inspo.data.vault import read_vault

    assert download_url("cfcql", "smac_v1", "5m_vs_6m") == (
        "https://huggingface.co/datasets/InstaDeepAI/og-marl/resolve/main/"
        "prior_work/cfcql/smac_v1/5m_vs_6m.zip")
    rel = tmp_path / "vaults"
    target = download_cfcql("5m_vs_6m", rel_dir=str(rel), url=zips["good"].as_uri())
    assert target == rel / "cfcql" / "smac_v1" / "5m_vs_6m.vlt"
    env = SMACv1("5m_vs_6m", env_factory=FakeStarCraft2Env)
    data = read_vault(str(rel), "cfcql", "smac_v1", "5m_vs_6m", "Medium", environment=env)
    assert data["observations"].shape == (1, 6, N, O)
    assert sorted(p.name for p in target.parent.iterdir()) == ["5m_vs_6m.vlt"]  # no temp left
    # a second call does not fetch (the url does not even exist)
    assert download_cfcql("5m_vs_6m", rel_dir=str(rel), url=str(tmp_path / "nope.zip")) == target
    assert "already present" in capsys.readouterr().out


def test_download_refuses_a_wrong_observation_size(tmp_path, zips):
    from og_marl_inspo.data.importers import download_cfcql

    rel = tmp_path / "vaults"
    with pytest.raises(DataError) as err:
        download_cfcql("5m_vs_6m", rel_dir=str(rel), url=str(zips["bad"]))
    message = str(err.value)
    assert "\n" not in message and "field observations" in message and "55" in message
    assert "5m_vs_6m.vlt/Medium" in message
    assert list((rel / "cfcql" / "smac_v1").iterdir()) == []  # nothing installed, no temp left


def test_cli_download(tmp_path, zips, capsys):
    from og_marl_inspo.cli import main

    rel = str(tmp_path / "v")
    argv = ["datasets", "download", "--source", "cfcql", "--env", "smac_v1",
            "--scenario", "5m_vs_6m", "--rel-dir", rel]
    assert main(argv + ["--url", zips["good"].as_uri()]) == 0
    assert (tmp_path / "v" / "cfcql" / "smac_v1" / "5m_vs_6m.vlt" / "Medium" / "metadata.json").exists()
    assert main(["datasets", "download", "--source", "cfcql", "--env", "smac_v1",
                 "--scenario", "1c3s5z", "--rel-dir", rel]) == 2
    assert "no published vault" in capsys.readouterr().err
