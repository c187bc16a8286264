"""InSPO: learns XOR, its switches and ablations, agent-sliced updates, one trace, reproducibility."""

from __future__ import annotations

import types

import numpy as np
import pytest
import sonnet as snt
import tensorflow as tf

from og_marl_inspo.config import default_config
from og_marl_inspo.data.buffer import ReplayBuffer
from og_marl_inspo.data.collect import RECIPES, experience_from_episodes
from og_marl_inspo.errors import ConfigError
from og_marl_inspo.inspo import InSPOConfig, InSPOSystem, resample_counts, turn_resamples
from og_marl_inspo.networks import (AgentSlicedAdam, Torso, agent_slice, agentwise_unroll,
                                    agentwise_variables)


def fake_env(n=2, obs=4, state=5, actions=3):
    """Just the attributes a system reads."""
    return types.SimpleNamespace(agents=[f"agent_{i}" for i in range(n)], num_actions=actions,
                                 observation_shape=(obs,), state_shape=(state,))


def fake_batch(n=2, obs=4, state=5, actions=3, b=8, t=3, seed=0):
    """A random Experience window (B,T,...); agent 0 has only action 0 legal on odd rows."""
    rng = np.random.default_rng(seed)
    legals = np.ones((b, t, n, actions), np.float32)
    legals[:, 1::2, 0, 1:] = 0.0
    acts = rng.integers(0, actions, (b, t, n)).astype(np.int32)
    acts[:, 1::2, 0] = 0
    terminals = (rng.random((b, t, 1)) < 0.3).astype(np.float32).repeat(n, -1)
    return {"observations": rng.normal(size=(b, t, n, obs)).astype(np.float32), "actions": acts,
            "rewards": rng.normal(size=(b, t, 1)).astype(np.float32).repeat(n, -1),
            "terminals": terminals, "truncations": np.zeros((b, t, n), np.float32),
            "infos": {"legals": legals, "state": rng.normal(size=(b, t, state)).astype(np.float32)}}


def xor_buffer(env, dataset="B", seed=0, batch_size=256):
    episodes = RECIPES[("inspo", "matrix", "xor")][dataset].build(env, np.random.default_rng(0))
    experience = experience_from_episodes(episodes)
    experience = {k: ({kk: vv[None] for kk, vv in v.items()} if isinstance(v, dict) else v[None])
                  for k, v in experience.items()}  # add-batch axis of 1, as a vault holds it
    return ReplayBuffer(2, batch_size, 1, seed=seed, experience=experience)


def xor_config(**overrides):
    """The systems/inspo.py settings for matrix/xor."""
    return {**default_config("inspo", "matrix", "xor").system.to_dict(), **overrides}


def train_on_xor(env, dataset, **overrides):
    """A systems/inspo.py matrix/xor run, as `og-marl-inspo train` makes it; returns
    (system, last logs, mean return of 2000 sampled episodes)."""
    from og_marl_inspo.trainer import run_episodes

    run = default_config("inspo", "matrix", "xor")
    system = InSPOSystem(env, seed=0, **xor_config(**overrides))
    buffer = xor_buffer(env, dataset, batch_size=run.replay.batch_size)
    for _ in range(run.training_steps):
        logs = system.train_step(buffer.sample())
    return system, logs, run_episodes(system, env, 2000, seed=1)["episode_returns"].mean()


def test_inspo_reaches_one_on_xor_b(xor_env):
    system, logs, mean_return = train_on_xor(xor_env, "B")
    assert mean_return >= 0.99  # the optimum is 1: one agent plays A, the other B
    assert system.eval_mode == "stochastic" and all(np.isfinite(list(logs.values())))
    for key in ("critic_loss", "policy_loss", "alpha", "kl_joint", "entropy_mean", "ess_min", "ess_mean",
                "weight_mean", "weight_clip_frac", "rho_clip_frac", "q_mean"):
        assert key in logs
    assert float(logs["weight_mean"]) == pytest.approx(1.0)  # normalize_weights: mean 1 under D_rho


def test_inspo_reaches_one_on_xor_a_where_only_the_resampling_drift_coordinates(xor_env):
    _, _, mean_return = train_on_xor(xor_env, "A")
    assert mean_return >= 0.99  # every row pays 1: a corner is reached through resampled marginals


@pytest.mark.parametrize("ratio", ["old", "behaviour"])
def test_without_spo_the_agents_miscoordinate_on_xor_b(xor_env, ratio):
    system, _, mean_return = train_on_xor(xor_env, "B", sequential=False, simultaneous_ratio=ratio)
    system.reset(1)
    marginals = tf.nn.softmax(system._policy_step(tf.ones([1, 2, 1]), tf.ones([1, 2, 2]),
                                                  system.initial_state(1))[0]).numpy()[0]  # (N,A)
    assert mean_return < 0.6  # InSPO Fig. 5b: w/o SPO does not find the optimum 1
    same = marginals[0] @ marginals[1]  # probability that both agents pick the same action
    assert same > 0.5  # (A, A) or (B, B): the agents moved together
    if ratio == "behaviour":  # each agent's in-sample best action is B: the OOD (B, B), -2
        assert mean_return < -1.0 and (marginals[:, 1] > 0.8).all()


def test_per_turn_resampling_gives_every_step_of_a_turn_one_d_rho():
    log_rho = tf.math.log(tf.reshape(tf.range(1.0, 33.0), [4, 8]))  # (B,T-1), unequal ratios
    seeds = tf.reshape(tf.range(2 * 6), [2, 6])  # one turn of 3 inner steps, critic + actor
    critic, actor = turn_resamples(log_rho, seeds, "per_turn")
    first = critic(0).numpy()
    assert first.shape == (1, 4, 8) and first.sum() == 32
    for k in range(3):
        np.testing.assert_array_equal(critic(k).numpy(), first)
        np.testing.assert_array_equal(actor(k).numpy(), first)
    np.testing.assert_array_equal(first, resample_counts(log_rho, seeds[:, 0]).numpy()[None])
    critic, actor = turn_resamples(log_rho, seeds, "per_step")
    draws = [critic(k).numpy() for k in range(3)] + [actor(k).numpy() for k in range(3)]
    assert all(d.sum() == 32 for d in draws)
    assert len({d.tobytes() for d in draws}) == 6  # a fresh resample for every step
    np.testing.assert_array_equal(draws[4], resample_counts(log_rho, seeds[:, 4]).numpy()[None])


def test_behaviour_cloning_comes_first_then_policy_is_mu(xor_env):
    system = InSPOSystem(xor_env, seed=0, bc_steps=2)
    buffer = xor_buffer(xor_env)
    assert set(system.train_step(buffer.sample())) == {"bc_loss", "critic_loss"}
    system.train_step(buffer.sample())
    assert not bool(system.policy_ready.numpy())
    system.policy_optimizer.learning_rate = 0.0  # freeze pi to compare it with mu
    system._tf_train_step = tf.function(system._train_step, autograph=False)
    system.train_step(buffer.sample())  # first InSPO step: pi starts as a copy of mu
    assert bool(system.policy_ready.numpy()) and int(system.bc_updates.numpy()) == 2
    for pi, mu in zip(agentwise_variables(system.policy), agentwise_variables(system.mu)):
        np.testing.assert_array_equal(pi.numpy(), mu.numpy())


def test_mu_acts_during_behaviour_cloning_then_pi(xor_env):
    system = InSPOSystem(xor_env, seed=0, bc_steps=1, policy_init="scratch")
    buffer = xor_buffer(xor_env)
    obs, legals = np.zeros((1, 2, 1), np.float32), np.ones((1, 2, 2), np.float32)

    def scores():
        system.reset(1)
        return system._policy_step(tf.constant(obs), tf.constant(legals), system._state)[0].numpy()

    def logits(net):
        return net.step(tf.constant(obs), net.initial_state(1))[0].numpy()

    system.train_step(buffer.sample())  # the BC step: mu trains, pi is still its random init
    assert not np.allclose(logits(system.mu), logits(system.policy))
    np.testing.assert_allclose(scores(), logits(system.mu))
    system.train_step(buffer.sample())  # the InSPO phase starts: pi acts from now on
    np.testing.assert_allclose(scores(), logits(system.policy))


def test_permutation_is_random_per_step_and_fixed_when_asked():
    env, batch = fake_env(n=3), fake_batch(n=3, t=2)
    orders = {}
    for mode in ("random", "fixed"):
        system = InSPOSystem(env, seed=3, bc_steps=0, update_order=mode)
        orders[mode] = []
        for _ in range(5):
            system.train_step(batch)
            orders[mode].append(tuple(system.last_order.numpy()))
        assert all(sorted(o) == [0, 1, 2] for o in orders[mode])
    assert len(set(orders["random"])) > 1 and set(orders["fixed"]) == {(0, 1, 2)}


def test_auto_alpha_moves_toward_the_kl_target():
    env, batch = fake_env(), fake_batch()
    # pi = mu: KL 0 is below the target, so alpha falls from its start of 10
    below = InSPOSystem(env, seed=0, bc_steps=0, alpha="auto", target_kl_per_agent=0.5)
    alphas = [float(below.train_step(batch)["alpha"]) for _ in range(3)]
    assert alphas[0] == pytest.approx(10.0) and float(below.alpha) < alphas[0]
    # pi far from mu (both random nets), target 0: alpha rises
    above = InSPOSystem(env, seed=0, bc_steps=0, alpha="auto", target_kl_per_agent=0.0,
                        policy_init="scratch")
    logs = [above.train_step(batch) for _ in range(3)]
    assert float(logs[0]["kl_joint"]) > 0 and float(above.alpha) > 10.0


def test_simultaneous_ablation_resamples_for_behaviour_or_old_teammates():
    env, batch = fake_env(), fake_batch()
    runs = {name: InSPOSystem(env, seed=0, bc_steps=0, **fields) for name, fields in (
        ("sequential", {}), ("old", {"sequential": False}),
        ("behaviour", {"sequential": False, "simultaneous_ratio": "behaviour"}))}
    first = {name: system.train_step(batch) for name, system in runs.items()}
    # pi_0 = mu: the old policies' ratios are 1 too, so both simultaneous forms resample uniformly
    assert float(first["behaviour"]["ess_min"]) == float(first["old"]["ess_min"]) == pytest.approx(1.0)
    assert float(first["sequential"]["ess_min"]) < 1.0
    second = {name: system.train_step(batch) for name, system in runs.items()}
    assert float(second["old"]["ess_min"]) < 1.0  # the teammates have moved since mu
    assert float(second["behaviour"]["ess_min"]) == pytest.approx(1.0)  # held at mu


def test_entropy_ablation_sets_beta_to_zero():
    env, batch = fake_env(), fake_batch()
    plain = InSPOSystem(env, seed=0, bc_steps=0, beta=1.0)
    ablated = InSPOSystem(env, seed=0, bc_steps=0, beta=1.0, entropy=False)
    assert plain.beta == 1.0 and ablated.beta == 0.0
    one, two = plain.train_step(batch), ablated.train_step(batch)
    assert float(two["beta"]) == 0.0 and float(one["weight_mean"]) != float(two["weight_mean"])


def test_beta_anneal_is_linear_between_start_and_end():
    env, batch = fake_env(), fake_batch()
    system = InSPOSystem(env, seed=0, bc_steps=0, beta=4.0, beta_final=1.0, beta_anneal_start=1,
                         beta_anneal_steps=2)
    betas = [float(system.train_step(batch)["beta"]) for _ in range(4)]
    assert betas == pytest.approx([4.0, 4.0, 2.5, 1.0])


@pytest.mark.parametrize("fields, message", [
    ({"alpha": -0.5}, "config field system.alpha: must be >= 0 or 'auto'"),
    ({"alpha": "automatic"}, "config field system.alpha: must be >= 0 or 'auto'"),
    ({"beta": -1.0}, "config field system.beta: must be >= 0"),
    ({"update_order": "shuffled"}, "config field system.update_order: choose one of random, fixed"),
    ({"torso": "lstm"}, "config field system.torso"),
    ({"alpha": 0.0, "entropy": False}, r"system.alpha: alpha \+ beta must be > 0"),
    ({"sequential": "yes"}, "config field system.sequential"),
    ({"simultaneous_ratio": "new"}, "config field system.simultaneous_ratio: choose one of old, behaviour"),
    ({"resample": "sometimes"}, "config field system.resample: choose one of per_step, per_turn"),
    ({"policy_adam_beta1": 1.0}, r"config field system.policy_adam_beta1: must be in \[0, 1\)"),
    ({"normalize_weights": 1}, "config field system.normalize_weights"),
])
def test_bad_config_values_are_refused_naming_the_field(fields, message):
    with pytest.raises(ConfigError, match=message):
        InSPOConfig(**fields)


def test_alpha_is_text_in_run_configs_and_switches_to_auto():
    from og_marl_inspo.cli import run_config

    config = run_config("inspo", "inspo", "matrix", "xor", "B", 0, overrides=["system.alpha=auto"])
    assert InSPOConfig(**config.system.to_dict()).alpha == "auto"
    config = run_config("inspo", "inspo", "matrix", "xor", "B", 0, overrides=["system.alpha=0.3"])
    assert InSPOConfig(**config.system.to_dict()).alpha == 0.3
    with pytest.raises(ConfigError, match="system.alpha"):
        InSPOConfig(**{**config.system.to_dict(), "alpha": "-2"})


def test_agent_sliced_adam_moves_only_that_agent():
    variables = [tf.Variable(tf.random.normal([3, 4, 2], seed=1)), tf.Variable(tf.random.normal([3, 2]))]
    optimizer = AgentSlicedAdam(variables, 0.1)
    before = [v.numpy().copy() for v in variables]
    grads = [tf.ones([1, 4, 2]), -tf.ones([1, 2])]
    for _ in range(2):
        optimizer.apply(grads, variables, tf.constant(1))
    for old, var in zip(before, variables):
        new = var.numpy()
        np.testing.assert_array_equal(new[[0, 2]], old[[0, 2]])
        assert not np.allclose(new[1], old[1])
    assert optimizer.count.numpy().tolist() == [0, 2, 0]
    assert not optimizer.m.numpy()[[0, 2]].any() and not optimizer.v.numpy()[[0, 2]].any()
    # slice 1 followed Sonnet's Adam exactly
    reference = [tf.Variable(old[1:2]) for old in before]
    adam = snt.optimizers.Adam(0.1)
    for _ in range(2):
        adam.apply(grads, reference)
    for ref, var in zip(reference, variables):
        np.testing.assert_allclose(var.numpy()[1:2], ref.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_agentwise_unroll_equals_the_torso(kind):
    torso = Torso(kind, 3, 4, (8, 8), layout="agentwise")
    x = tf.random.normal([2, 5, 3, 6], seed=2)
    resets = tf.constant([[0, 1, 0, 0, 1], [0, 0, 0, 1, 0]], tf.float32)
    expected = torso.unroll(x, resets)  # (B,T,N,A)
    params = agentwise_variables(torso)
    got = agentwise_unroll(kind, params, tf.transpose(x, [2, 0, 1, 3]), resets)  # (N,B,T,A)
    np.testing.assert_allclose(tf.transpose(got, [1, 2, 0, 3]).numpy(), expected.numpy(), atol=1e-5)
    one = agentwise_unroll(kind, agent_slice(params, tf.constant(2)), tf.transpose(x, [2, 0, 1, 3])[2:], resets)
    np.testing.assert_allclose(one[0].numpy(), expected[:, :, 2].numpy(), atol=1e-5)


def test_resample_counts_sum_to_the_batch_and_follow_the_ratios():
    log_rho = tf.math.log(tf.constant([[1.0, 1.0], [2.0, 0.0001]]))
    counts = resample_counts(log_rho, tf.constant([1, 2])).numpy()
    assert counts.sum() == 4 and counts[1, 1] == 0


def test_train_step_traces_once_and_same_seed_gives_same_losses():
    env = fake_env()
    batches = [fake_batch(seed=k) for k in range(3)]
    one, two = (InSPOSystem(env, seed=5, bc_steps=0) for _ in range(2))
    logs_one = [one.train_step(b) for b in batches]
    logs_two = [two.train_step(b) for b in batches]
    assert one._tf_train_step.experimental_get_tracing_count() == 1
    for a, b in zip(logs_one, logs_two):
        assert {k: float(v) for k, v in a.items()} == {k: float(v) for k, v in b.items()}
    other = InSPOSystem(env, seed=6, bc_steps=0)
    assert float(other.train_step(batches[0])["critic_loss"]) != float(logs_one[0]["critic_loss"])


def test_checkpoint_resume_gives_the_uninterrupted_numbers(tmp_path):
    env = fake_env()
    batches = [fake_batch(seed=k) for k in range(6)]
    whole = InSPOSystem(env, seed=1, bc_steps=2)
    expected = [whole.train_step(b) for b in batches][-1]
    first = InSPOSystem(env, seed=1, bc_steps=2)
    for b in batches[:3]:
        first.train_step(b)
    tf.train.Checkpoint(**first.checkpoint_items()).save(str(tmp_path / "ckpt"))
    resumed = InSPOSystem(env, seed=1, bc_steps=2)
    tf.train.Checkpoint(**resumed.checkpoint_items()).restore(str(tmp_path / "ckpt-1"))
    got = [resumed.train_step(b) for b in batches[3:]][-1]
    assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in expected.items()}


def test_gru_mode_trains_on_a_three_agent_window_and_acts_legally():
    env = fake_env(n=3, obs=7, state=9, actions=4)
    batch = fake_batch(n=3, obs=7, state=9, actions=4, b=4, t=3)
    system = InSPOSystem(env, seed=0, torso="gru", bc_steps=1, alpha="auto", eval_mode="greedy")
    assert system.critic_input == "state_obs_id"
    bc_logs, logs = system.train_step(batch), system.train_step(batch)
    assert np.isfinite([float(v) for v in {**bc_logs, **logs}.values()]).all()
    system.reset(1)
    legal = {a: np.array([1, 0, 0, 1], np.float32) for a in env.agents}
    for _ in range(3):
        actions = system.select_actions({a: np.zeros(7, np.float32) for a in env.agents}, legal)
        assert all(int(actions[a]) in (0, 3) for a in env.agents)
