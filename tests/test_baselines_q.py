"""BCQ, CQL and CFCQL: they learn on XOR, act legally, show their defining behaviour, refuse
bad configs and run end to end on a small Bridge dataset."""

from __future__ import annotations

import types

import numpy as np
import pytest
import tensorflow as tf

from og_marl_inspo.baselines.bcq import BCQConfig, BCQSystem, allowed_actions
from og_marl_inspo.baselines.cfcql import (CFCQLConfig, CFCQLSystem, agent_weights,
                                           counterfactual_penalty, counterfactual_q_tot)
from og_marl_inspo.baselines.common import QNetworks, taken
from og_marl_inspo.baselines.cql import CQLConfig, CQLSystem, cql_penalty_eq4
from og_marl_inspo.data.buffer import ReplayBuffer
from og_marl_inspo.errors import ConfigError
from og_marl_inspo.networks import MASK_VALUE, QMixer
from og_marl_inspo.registry import get_system, list_systems

SYSTEMS = {"bcq": BCQSystem, "cql": CQLSystem, "cfcql": CFCQLSystem}
TINY = {"hidden_sizes": (32, 32), "learning_rate": 1e-2}
XOR_SETTINGS = {  # small nets, big steps: a few hundred updates settle the one-shot game
    "bcq": {"bc_learning_rate": 1e-2, "threshold": 0.6},
    "cql": {"alpha": 1.0},
    "cfcql": {"alpha": 1.0, "softmax_temp": 1.0, "td_lambda": 0.0, "bc_steps": 20, "bc_learning_rate": 1e-2},
}
LOSS_KEY = {"bcq": "td_loss", "cql": "td_loss", "cfcql": "loss"}


def fake_env(n=3, obs=4, state=5, actions=5):
    """Just the attributes a system reads."""
    return types.SimpleNamespace(agents=[f"agent_{i}" for i in range(n)], num_actions=actions,
                                 observation_shape=(obs,), state_shape=(state,))


def random_legals(rng, shape):
    """0/1 masks with zeros, at least one legal action per row."""
    legals = (rng.random(shape) < 0.5).astype(np.float32)
    first = rng.integers(0, shape[-1], shape[:-1])
    np.put_along_axis(legals, first[..., None], 1.0, axis=-1)
    return legals


def one_step_batch(joint, b=64, n_actions=2, reward=1.0):
    """Windows of two one-step episodes that all play `joint` (obs [1], all legal)."""
    n = len(joint)
    acts = np.broadcast_to(np.asarray(joint, np.int32), (b, 2, n)).copy()
    return {"observations": np.ones((b, 2, n, 1), np.float32), "actions": acts,
            "rewards": np.full((b, 2, n), reward, np.float32), "terminals": np.ones((b, 2, n), np.float32),
            "truncations": np.zeros((b, 2, n), np.float32),
            "infos": {"legals": np.ones((b, 2, n, n_actions), np.float32),
                      "state": np.ones((b, 2, 1), np.float32)}}


@pytest.fixture(scope="module", params=sorted(SYSTEMS))
def trained_on_xor_b(request, vault_root):
    """(name, system, logs) after 150 steps on the inspo XOR dataset B."""
    from og_marl_inspo.envs import get_environment

    env = get_environment("inspo", "matrix", "xor")
    buffer = ReplayBuffer(2, 64, 1, seed=0)
    buffer.populate_from_vault("inspo", "matrix", "xor", "B", rel_dir=vault_root, environment=env)
    tf.random.set_seed(0)
    system = get_system(request.param, env, None, seed=0, **TINY, **XOR_SETTINGS[request.param])
    logs = [system.train_step(buffer.sample()) for _ in range(150)]
    return request.param, system, logs


def test_registered():
    assert {"bcq", "cql", "cfcql"} <= set(list_systems())


def test_loss_decreases_on_xor_b(trained_on_xor_b):
    name, _, logs = trained_on_xor_b
    losses = [float(step[LOSS_KEY[name]]) for step in logs if LOSS_KEY[name] in step]
    assert all(np.isfinite(losses)) and len(losses) >= 120
    assert np.mean(losses[-20:]) < 0.8 * losses[0]


def test_q_values_match_xor_b_marginals(trained_on_xor_b):
    """Independent learners see Q_i(A) = 1/2 and Q_i(B) = 1 on dataset B (a partner mix)."""
    name, system, _ = trained_on_xor_b
    if name != "bcq":
        pytest.skip("CQL's penalty and CFCQL's mixer move the agent values off the marginals")
    values, _ = system.q.step(tf.ones([1, 2, 1]), None)
    np.testing.assert_allclose(values.numpy()[0], [[0.5, 1.0], [0.5, 1.0]], atol=0.35)
    assert (values.numpy()[0, :, 1] > values.numpy()[0, :, 0]).all()


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_actions_are_always_legal(name):
    rng = np.random.default_rng(0)
    system = get_system(name, fake_env(), None, seed=0, hidden_sizes=(16, 16))
    obs = rng.normal(size=(256, 3, 4)).astype(np.float32)
    legals = random_legals(rng, (256, 3, 5))
    for mode in ("greedy", "stochastic"):
        system.eval_mode = mode
        system.reset(256)
        actions = system.act(obs, legals, rng)
        assert (np.take_along_axis(legals, actions[..., None], -1) == 1).all()
    assert legals.min() == 0


@pytest.mark.parametrize("mode", ["greedy", "stochastic"])
def test_bcq_never_picks_an_action_below_the_threshold(mode):
    rng = np.random.default_rng(1)
    system = BCQSystem(fake_env(), seed=0, hidden_sizes=(16, 16), threshold=0.5, eval_mode=mode)
    for v in system.behaviour.trainable_variables:  # a sharper behaviour model: the filter bites
        v.assign(3.0 * v)
    obs = rng.normal(size=(512, 3, 4)).astype(np.float32)
    legals = random_legals(rng, (512, 3, 5))
    system.reset(512)
    bc_logits, _ = system.behaviour.step(tf.constant(obs), None)
    allowed = allowed_actions(bc_logits, tf.constant(legals), 0.5).numpy()
    probs = tf.nn.softmax(tf.where(legals > 0, bc_logits, MASK_VALUE)).numpy()
    ratio = probs / probs.max(-1, keepdims=True)
    np.testing.assert_array_equal(allowed, ((ratio >= 0.5) & (legals > 0)).astype(np.float32))
    actions = system.act(obs, legals, rng)
    chosen = np.take_along_axis(ratio, actions[..., None], -1)[..., 0]
    assert chosen.min() >= 0.5 and allowed.sum() < legals.sum()
    system.config.bcq_mask_at_execution = False  # OG-MARL's execution ignores the filter
    free = np.take_along_axis(ratio, system.act(obs, legals, rng)[..., None], -1)[..., 0]
    assert free.min() < 0.5


def test_bcq_filter_overrides_q_on_xor_b(trained_on_xor_b):
    """On B, G(B)/G(A) = 1/2 < tau = 0.6: BCQ plays A although Q prefers B."""
    name, system, _ = trained_on_xor_b
    if name != "bcq":
        pytest.skip("BCQ only")
    system.reset(1)
    assert system.act(np.ones((1, 2, 1), np.float32), np.ones((1, 2, 2), np.float32),
                      np.random.default_rng(0)).tolist() == [[0, 0]]


def test_cql_penalty_gradient_pushes_unseen_actions_down():
    q = tf.constant([[[[1.0, 0.5, 2.0, 0.0]]]])  # (B,T,N,A) = (1,1,1,4)
    legals = tf.constant([[[[1.0, 1.0, 1.0, 0.0]]]])
    with tf.GradientTape() as tape:
        tape.watch(q)
        penalty = cql_penalty_eq4(q, taken(q, tf.constant([[[0]]])), legals, mask_illegal=True)
    grad = tape.gradient(penalty, q).numpy()[0, 0, 0]
    soft = np.exp([1.0, 0.5, 2.0]) / np.exp([1.0, 0.5, 2.0]).sum()
    np.testing.assert_allclose(grad, [soft[0] - 1.0, soft[1], soft[2], 0.0], rtol=1e-5)
    np.testing.assert_allclose(float(penalty), np.log(np.exp([1.0, 0.5, 2.0]).sum()) - 1.0, rtol=1e-5)


def test_cql_lowers_unseen_actions_relative_to_plain_td():
    """Agent 0 only ever plays A: CQL's Q_0(B) - Q_0(A) ends well below plain TD's."""
    batch = one_step_batch((0, 1))
    env = fake_env(n=2, obs=1, state=1, actions=2)
    gaps = {}
    for alpha in (0.0, 1.0):
        tf.random.set_seed(0)
        system = CQLSystem(env, seed=0, alpha=alpha, hidden_sizes=(16, 16), learning_rate=5e-2)
        for _ in range(15):
            system._train_step(batch)  # eager: a few steps cost less than a trace
        q = system.q.step(tf.ones([1, 2, 1]), None)[0].numpy()[0]
        gaps[alpha] = q[0, 1] - q[0, 0]
        assert q[0, 0] == pytest.approx(1.0, abs=0.3)  # the data action tracks its reward
    assert gaps[1.0] < gaps[0.0] - 1.0


def test_counterfactual_q_tot_replaces_one_agent_at_a_time():
    rng = np.random.default_rng(0)
    q = tf.constant(rng.normal(size=(2, 1, 3, 4)), tf.float32)  # (B,T,N,A)
    actions = tf.constant(rng.integers(0, 4, (2, 1, 3)), tf.int32)
    q_taken = taken(q, actions)
    legals = np.ones((2, 1, 3, 4), np.float32)
    legals[0, 0, 1, 2] = 0.0
    vdn = lambda values, state: tf.reduce_sum(values, -1)  # noqa: E731: a mixer we can do by hand
    cf = counterfactual_q_tot(vdn, q, q_taken, tf.zeros([2, 1, 1]), tf.constant(legals)).numpy()
    expected = q_taken.numpy().sum(-1)[..., None, None] - q_taken.numpy()[..., None] + q.numpy()
    expected[0, 0, 1, 2] = MASK_VALUE
    np.testing.assert_allclose(cf, expected, rtol=1e-5)
    mixer = QMixer(3)  # with the real mixer, agent i playing its own action is the factual Q_tot
    state = tf.constant(rng.normal(size=(2, 1, 5)), tf.float32)
    cf = counterfactual_q_tot(mixer, q, q_taken, state, tf.ones([2, 1, 3, 4]))
    factual = mixer(q_taken, state).numpy()
    np.testing.assert_allclose(taken(cf, actions).numpy(), np.repeat(factual[..., None], 3, -1), rtol=1e-5)


def test_cfcql_agent_weights_and_penalty_by_hand():
    cf = np.array([[[[1.0, 2.0, 0.0], [0.5, 0.5, MASK_VALUE]]]], np.float32)  # (1,1,N=2,A=3)
    beta = np.array([[[[0.2, 0.3, 0.5], [0.9, 0.1, 0.0]]]], np.float32)
    legals = np.array([[[[1, 1, 1], [1, 1, 0]]]], np.float32)
    eps = 1e-5
    mu = np.exp(cf - cf.max(-1, keepdims=True))
    mu = mu / mu.sum(-1, keepdims=True) + eps
    kl = (legals * mu * (np.log(mu) - np.log(beta + eps))).sum(-1)[0, 0]  # (N,)
    for temp in (0.0, 0.5, 5.0):
        expected = np.exp(temp * kl) / np.exp(temp * kl).sum()
        got = agent_weights(tf.constant(cf), tf.constant(beta), tf.constant(legals), temp, eps).numpy()[0, 0]
        np.testing.assert_allclose(got, expected, rtol=1e-4)
    one_hot = agent_weights(tf.constant(cf), tf.constant(beta), tf.constant(legals), 100.0, eps).numpy()[0, 0]
    np.testing.assert_array_equal(one_hot, np.eye(2)[np.argmax(kl)])
    assert kl[1] > kl[0]  # agent 1's counterfactual values stray further from its behaviour
    weights = tf.constant([[[0.25, 0.75]]])
    q_tot = tf.constant([[1.5]])
    lse = [np.log(np.exp([1.0, 2.0, 0.0]).sum()), np.log(2 * np.exp(0.5))]
    penalty = counterfactual_penalty(tf.constant(cf), weights, q_tot)
    assert float(penalty) == pytest.approx(0.25 * lse[0] + 0.75 * lse[1] - 1.5, abs=1e-5)


def test_cfcql_trains_behaviour_first_then_freezes_it():
    env = fake_env(n=2, obs=1, state=1, actions=2)
    system = CFCQLSystem(env, seed=0, hidden_sizes=(8, 8), softmax_temp=1.0, bc_steps=2)
    batch = one_step_batch((0, 1))
    assert set(system._bc_step(batch)) == {"bc_loss"}
    before = [v.numpy().copy() for v in system.behaviour.trainable_variables]
    system.bc_updates.assign(2)
    logs = system._train_step(batch)
    assert {"loss", "td_loss", "cql_loss", "lambda_max_mean"} <= set(logs)
    for v, old in zip(system.behaviour.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), old)


def test_target_network_is_copied_every_period():
    nets = QNetworks(CQLConfig(target_update_period=3, hidden_sizes=(4, 4)), 2, 2, 1)
    for v in nets.online.trainable_variables:
        v.assign_add(tf.ones_like(v))
    moved = lambda: any(not np.array_equal(a.numpy(), b.numpy())  # noqa: E731
                        for a, b in zip(nets.online.variables, nets.target.variables))
    nets.updates.assign(1)
    nets.sync()  # update 1: no copy
    assert moved()
    nets.sync(), nets.sync()  # update 3: copy
    assert not moved()


@pytest.mark.parametrize("config_cls,field,value", [
    (CQLConfig, "alpha", -1.0), (CQLConfig, "gamma", 1.5), (CQLConfig, "eval_mode", "sample"),
    (BCQConfig, "threshold", 1.5), (BCQConfig, "threshold", -0.1), (BCQConfig, "logit_penalty", -1.0),
    (CFCQLConfig, "alpha", -0.5), (CFCQLConfig, "softmax_temp", -1.0), (CFCQLConfig, "td_lambda", 2.0),
    (CFCQLConfig, "target_update_period", 0), (CFCQLConfig, "torso", "lstm"),
])
def test_bad_config_values_are_refused(config_cls, field, value):
    with pytest.raises(ConfigError, match=f"system.{field}"):
        config_cls(**{field: value})


def test_bad_config_refused_through_the_registry():
    with pytest.raises(ConfigError, match="system.threshold"):
        get_system("bcq", fake_env(), None, threshold=2.0)


@pytest.fixture(scope="module")
def small_bridge(tmp_path_factory):
    """A rel_dir holding a 300-episode Bridge dataset (150 optimal + 150 random episodes)."""
    from og_marl_inspo.data.collect import experience_from_episodes
    from og_marl_inspo.data.vault import write_vault
    from og_marl_inspo.envs import bridge, get_environment

    root = str(tmp_path_factory.mktemp("bridge_vaults"))
    env = get_environment("cpa", "bridge", "bridge", seed=0)
    episodes = bridge.optimal_and_random(150, 150)(env, np.random.default_rng(0))
    write_vault(experience_from_episodes(episodes), root, "cpa", "bridge", "bridge", "Small")
    return root


@pytest.mark.parametrize("name", [*sorted(SYSTEMS), "maicq"])  # each with its Bridge config
def test_short_bridge_run_trains_and_evaluates(name, small_bridge, tmp_path):
    from og_marl_inspo.config import default_config
    from og_marl_inspo.launch import run

    config = default_config(name, "bridge", "bridge")
    with config.unlocked():
        config.training_steps = 40
        config.task.update(source="cpa", env="bridge", scenario="bridge", dataset="Small",
                           rel_dir=small_bridge)
        config.replay.batch_size = 32
        config.evaluation.update(every=40, episodes=4, final_multiplier=1)
        config.system.hidden_sizes = (32, 32)
        if name == "cfcql":
            config.system.bc_steps = 10
    results = run(config, str(tmp_path), progress=False, checkpoint=False)
    final = results["final"]
    assert final["episodes"] == 4 and -26.5 <= final["episode_return_mean"] <= 0.0
    assert [e["step"] for e in results["evaluations"]] == [0]
