"""Every wrapper honours OG-MARL's environment contract; the matrix games pay as specified."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from og_marl_inspo.envs import get_environment, known_environments


@pytest.mark.parametrize("triple", known_environments(), ids="/".join)
def test_contract(triple):
    env = get_environment(*triple, seed=3)
    assert env.agents == [f"agent_{i}" for i in range(env.num_agents)]
    assert env.possible_agents == env.agents
    obs, info = env.reset()
    assert list(obs) == env.agents and list(info["legals"]) == env.agents
    for agent in env.agents:
        assert obs[agent].dtype == np.float32 and obs[agent].shape == env.observation_shape
        legal = info["legals"][agent]
        assert legal.dtype == np.float32 and legal.shape == (env.num_actions,)
        assert set(np.unique(legal)) <= {0.0, 1.0}
    assert info["state"].dtype == np.float32 and info["state"].shape == env.state_shape
    actions = {a: int(np.flatnonzero(info["legals"][a])[0]) for a in env.agents}
    obs, rewards, terminals, truncations, info = env.step(actions)
    assert list(rewards) == env.agents and list(terminals) == env.agents
    for agent in env.agents:
        assert rewards[agent].dtype == np.float32 and rewards[agent].shape == ()
        assert terminals[agent].dtype == np.bool_ and truncations[agent].dtype == np.bool_
    assert len({float(r) for r in rewards.values()}) == 1  # team reward copied to every agent
    assert env.get_stats() == {} or isinstance(env.get_stats(), dict)


def _payoff(source, scenario):
    env = get_environment(source, "matrix", scenario)
    table = {}
    for joint in itertools.product(range(env.num_actions), repeat=env.num_agents):
        env.reset()
        _, rewards, terminals, _, _ = env.step(dict(zip(env.agents, joint)))
        assert all(bool(t) for t in terminals.values())  # one-shot game
        table[joint] = float(rewards["agent_0"])
    return table


def test_xor_payoffs_per_source():
    assert _payoff("inspo", "xor") == {(0, 0): 0.0, (0, 1): 1.0, (1, 0): 1.0, (1, 1): -2.0}
    assert _payoff("cpa", "xor") == {(0, 0): 0.0, (0, 1): 1.0, (1, 0): 1.0, (1, 1): 0.0}


def test_m_ne_payoffs():
    table = _payoff("inspo", "m_ne")
    assert (table[(0, 0)], table[(1, 1)], table[(2, 2)]) == (5.0, 10.0, 20.0)
    assert all(v == -20.0 for (a, b), v in table.items() if a != b)


def test_permutation_pays_only_permutations():
    table = _payoff("cpa", "permutation")
    assert len(table) == 256 and sum(table.values()) == 24.0
    assert table[(0, 1, 2, 3)] == 1.0 and table[(0, 0, 1, 2)] == 0.0


def test_out_of_range_action_is_refused(xor_env):
    xor_env.reset()
    with pytest.raises(ValueError, match="agent_1 chose illegal action 2"):
        xor_env.step({"agent_0": 0, "agent_1": 2})


def test_unknown_environment_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        get_environment("inspo", "matrix", "xnor")
    assert "inspo/matrix/xnor" in str(err.value) and "inspo/matrix/xor" in str(err.value)


def test_batched_episodes_pay_like_single_ones(xor_env):
    batch = xor_env.batch(4, seed=0)
    obs, legals, state = batch.reset()
    assert obs.shape == (4, 2, 1) and legals.shape == (4, 2, 2) and state.shape == (4, 1)
    joint = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    _, _, _, rewards, done = batch.step(joint, np.ones(4, bool))
    np.testing.assert_array_equal(rewards, [0.0, 1.0, 1.0, -2.0])
    assert done.all()
