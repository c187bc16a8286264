"""OMAR, OMIGA, AlberDICE: they learn from XOR and Bridge data, act legally, and show their
characteristic behaviour (OMAR's action search, OMIGA's decomposition, AlberDICE's
one-agent-at-a-time updates); bad settings are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from test_inspo import fake_batch, fake_env, xor_buffer

from og_marl_inspo.baselines.alberdice import AlberDICEConfig, AlberDICESystem
from og_marl_inspo.baselines.omar import OMARConfig, actor_loss_eq6, rectified_actions
from og_marl_inspo.baselines.omiga import OMIGAConfig, OMIGASystem, local_z, v_loss_eq11
from og_marl_inspo.errors import ConfigError
from og_marl_inspo.batch import unpack
from og_marl_inspo.networks import agent_slice, agentwise_unroll, agentwise_variables
from og_marl_inspo.registry import get_system
from og_marl_inspo.trainer import run_episodes

TINY = {"omar": {"hidden_sizes": (16, 16), "critic_hidden_sizes": (16, 16), "td_lambda": 0.0},
        "omiga": {"hidden_sizes": (16, 16)},
        "alberdice": {"hidden_sizes": (16, 16), "policy_lr": 1e-3, "nu_lr": 1e-3}}
LOSS = {"omar": "critic_loss", "omiga": "q_loss", "alberdice": "ar_loss"}


@pytest.mark.parametrize("name", ["omar", "omiga", "alberdice"])
def test_trains_on_xor_b_and_acts_legally(name, xor_env):
    system = get_system(name, xor_env, None, seed=0, **TINY[name])
    buffer = xor_buffer(xor_env, "B")
    buffer.batch_size = 64
    losses = [float(system.train_step(buffer.sample())[LOSS[name]]) for _ in range(60)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])
    # agent_0 may only play B, agent_1 only A: whatever was learnt, no illegal action comes out
    for mode in ("greedy", "stochastic"):
        system.eval_mode = mode
        system.reset(1)
        for _ in range(20):
            actions = system.select_actions({"agent_0": [1.0], "agent_1": [1.0]},
                                            {"agent_0": np.array([0, 1], np.float32),
                                             "agent_1": np.array([1, 0], np.float32)})
            assert (int(actions["agent_0"]), int(actions["agent_1"])) == (1, 0)


def test_alberdice_updates_one_agent_per_turn():
    env, batch = fake_env(n=3), fake_batch(n=3)
    system = AlberDICESystem(env, seed=0, hidden_sizes=(8, 8))
    nets = ("policy", "nu", "e", "ar_data_policy")
    before = {k: [v.numpy().copy() for v in agentwise_variables(getattr(system, k))] for k in nets}
    logs = system.update_agent(batch, 1)
    assert np.isfinite([float(v) for v in logs.values()]).all()
    for k in nets:
        for old, var in zip(before[k], agentwise_variables(getattr(system, k))):
            new = var.numpy()
            np.testing.assert_array_equal(new[[0, 2]], old[[0, 2]])  # teammates untouched
        assert any(not np.allclose(v.numpy()[1], old[1]) for old, v in
                   zip(before[k], agentwise_variables(getattr(system, k))))
    assert system.optimizers["policy"].count.numpy().tolist() == [0, 1, 0]
    system.update_agent(batch, 0)
    assert system.optimizers["nu"].count.numpy().tolist() == [1, 1, 0]


@pytest.mark.parametrize("torso", ["mlp", "gru"])
def test_alberdice_turns_read_each_teammate_at_its_current_policy(torso):
    """The log pi handed to turn i equals a fresh pass of the policies as they stand then:
    agents before i at their new parameters, agents after i at the old ones."""
    system = AlberDICESystem(fake_env(n=4), seed=0, hidden_sizes=(8, 8), torso=torso)
    turn, seen = system._turn, []

    def checked_turn(prep, agent, alpha, seeds, log_pi):
        fresh = system._log_pi(system._vars["policy"], prep)
        seen.append(float(tf.reduce_max(tf.abs(tf.concat(log_pi, 0) - fresh))))
        return turn(prep, agent, alpha, seeds, log_pi)

    system._turn = checked_turn
    system._train_step(fake_batch(n=4, t=3))
    assert len(seen) == 4 and max(seen) < 1e-5
    assert system.optimizers["policy"].count.numpy().tolist() == [1, 1, 1, 1]


def test_alberdice_ar_data_policy_first_layer_in_parts_equals_the_concatenated_input():
    """_ar_logits splits the first layer by input block; it must equal the MLP on
    x_k = [s, one-hot a_i, one-hot a of teammates 0..k-1 (zeros after), one-hot k]."""
    n, a, state = 4, 3, 5
    system = AlberDICESystem(fake_env(n=n, state=state, actions=a), seed=0, hidden_sizes=(8, 8))
    prep = system._prepare(unpack(fake_batch(n=n, state=state, actions=a)), fit_data_policy=False)
    agent, others = 2, [0, 1, 3]
    params = agent_slice(agentwise_variables(system.ar_data_policy), agent)
    s, taken = prep["state"][:, :-1], prep["taken"][:, :, :-1]
    rows = []
    for k in range(n - 1):
        prefix = [taken[others[p]] if p < k else tf.zeros_like(taken[0]) for p in range(n - 1)]
        position = tf.broadcast_to(tf.one_hot(k, n - 1), s.shape[:-1] + [n - 1])
        rows.append(tf.concat([s, taken[agent]] + prefix + [position], -1))
    expected = agentwise_unroll("mlp", params, tf.stack(rows)[None])[0]  # (N-1,B,T-1,A)
    np.testing.assert_allclose(system._ar_logits(params, prep, agent, others).numpy(), expected.numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["drop", "absorbing"])
def test_alberdice_leaves_timeouts_out_of_its_losses_when_dropping_them(mode):
    """Two batches that differ only in what follows a timeout (its reward and next state):
    dropped, every network ends its turn the same; as absorbing exits, nu and e do not."""
    batches = []
    for reward in (0.0, 5.0):
        batch = fake_batch(n=2, b=16, t=2, seed=3)
        timeout = np.arange(16) % 4 == 0
        batch["terminals"][timeout, 0] = 1.0
        batch["truncations"][timeout, 0] = 1.0
        batch["rewards"][timeout, 0] = reward
        batch["infos"]["state"][timeout, 1] += reward
        batches.append(batch)
    params = []
    for batch in batches:
        system = AlberDICESystem(fake_env(n=2), seed=0, hidden_sizes=(8, 8), time_limit_ends=mode)
        system.update_agent(batch, 0)
        params.append({k: [v.numpy() for v in agentwise_variables(getattr(system, k))]
                       for k in ("nu", "e", "policy")})
    same = {k: all(np.array_equal(a, b) for a, b in zip(params[0][k], params[1][k])) for k in params[0]}
    if mode == "drop":
        assert same == {"nu": True, "e": True, "policy": True}
    else:  # the policy reads the e-network as it stood before this turn
        assert not same["nu"] and not same["e"]


def test_alberdice_reaches_one_on_xor_a(xor_env):
    system = AlberDICESystem(xor_env, seed=0, policy_lr=2e-3, nu_lr=2e-3, alpha_anneal_steps=150)
    buffer = xor_buffer(xor_env, "A")
    buffer.batch_size = 128
    for _ in range(150):
        system.train_step(buffer.sample())
    returns = run_episodes(system, xor_env, 1000, seed=1)["episode_returns"]
    assert system.eval_mode == "stochastic" and returns.mean() >= 0.99  # (A,B) or (B,A) every time
    assert float(system.alpha) == pytest.approx(0.001)


def test_omiga_mixes_local_values_by_its_decomposition():
    env = fake_env(n=3, obs=4, state=5, actions=3)
    system = OMIGASystem(env, seed=0, hidden_sizes=(8, 8))
    rng = np.random.default_rng(0)
    obs = tf.constant(rng.normal(size=(6, 3, 4)), tf.float32)
    state = tf.constant(rng.normal(size=(6, 5)), tf.float32)
    actions = tf.constant(rng.integers(0, 3, (6, 3)), tf.int32)
    w, b = system.mixer(state)
    q_i = tf.gather(system.q.step(obs, None)[0], actions, batch_dims=2)  # (6,3)
    assert (w.numpy() >= 0).all()
    expected = (w.numpy() * q_i.numpy()).sum(-1) + b.numpy()  # Q_tot = sum_i w_i(s) Q_i + b(s)
    np.testing.assert_allclose(system.q_tot(obs, actions, state).numpy(), expected, rtol=1e-5, atol=1e-6)
    # the V loss of Eq. 11 is minimised at V = (alpha / w) log E_D[exp(w Qbar / alpha)]
    w_bar, alpha = tf.constant([[0.5, 2.0]]), 1.0
    q_bar = tf.constant([[1.0, -1.0], [3.0, 0.0], [0.0, 2.0]])  # three dataset actions per agent
    v = tf.Variable(tf.zeros([1, 2]))

    @tf.function
    def descend():
        for _ in tf.range(300):
            with tf.GradientTape() as tape:
                loss = v_loss_eq11(local_z(w_bar, q_bar, v, alpha, 10.0), w_bar, v, alpha)
            v.assign_sub(0.5 * tape.gradient(loss, v))

    descend()
    target = alpha / w_bar * tf.math.log(tf.reduce_mean(tf.exp(w_bar * q_bar / alpha), 0, keepdims=True))
    np.testing.assert_allclose(v.numpy(), target.numpy(), atol=1e-2)


def test_omar_action_search_returns_legal_actions_only():
    rng = np.random.default_rng(0)
    q = tf.constant(rng.normal(size=(64, 3, 5)), tf.float32)
    legals = (rng.random((64, 3, 5)) < 0.5).astype(np.float32)
    legals[..., 0] = np.where(legals.sum(-1) == 0, 1.0, legals[..., 0])  # at least one legal action
    masked_best = np.where(legals > 0, q.numpy(), -np.inf).argmax(-1)
    exact = rectified_actions(q, tf.constant(legals), "argmax").numpy()
    np.testing.assert_array_equal(exact, masked_best)
    for samples, elites in ((3, 1), (40, 5)):
        found = rectified_actions(q, tf.constant(legals), "cem", tf.constant([1, 2]), iters=3,
                                  samples=samples, elites=elites).numpy()
        assert np.take_along_axis(legals, found[..., None], -1).all()
    assert (found == masked_best).mean() > 0.95  # enough samples find the best legal action


def test_omar_floored_log_stops_pushing_a_dropped_action_down():
    """The CFCQL repo's log(pi + 1e-5): a data action the policy gives ~0 mass and a
    negative advantage no longer drives its logit down; with the bare log pi it does."""
    logits = tf.Variable([[[[0.0, -30.0, 0.0]]]])  # action 1 all but dropped
    q = tf.constant([[[[1.0, -1.0, 1.0]]]])
    taken = tf.one_hot([[[1]]], 3)  # the data took action 1: advantage -2
    rectified = tf.one_hot([[[0]]], 3)

    def pull(floor):
        with tf.GradientTape() as tape:
            loss = actor_loss_eq6(tf.nn.log_softmax(logits), q, taken, rectified, 0.0, floor)
        return tape.gradient(loss, logits).numpy()[0, 0, 0, 1]

    assert pull(0.0) > 1.9  # descent keeps lowering the dropped logit at full strength
    assert abs(pull(1e-5)) < 1e-6


def test_omar_rectification_mean_is_the_squared_norm_over_a():
    log_pi = tf.nn.log_softmax(tf.constant([[[[0.3, -0.2, 1.0, 0.0]]]]))
    zero_q = tf.zeros([1, 1, 1, 4])
    taken, rectified = tf.one_hot([[[1]]], 4), tf.one_hot([[[2]]], 4)
    total = actor_loss_eq6(log_pi, zero_q, taken, rectified, 1.0, rectification="sum")
    mean = actor_loss_eq6(log_pi, zero_q, taken, rectified, 1.0, rectification="mean")
    np.testing.assert_allclose(mean.numpy(), total.numpy() / 4, rtol=1e-6)
    assert total.numpy() > 0.3


@pytest.mark.parametrize("config, fields, message", [
    (OMARConfig, {"action_search": "grid"}, "system.action_search: choose one of argmax, cem"),
    (OMARConfig, {"omar_num_elites": 20}, "system.omar_num_elites: must be in"),
    (OMARConfig, {"cql_alpha": -1.0}, "system.cql_alpha: must be >= 0"),
    (OMARConfig, {"log_prob_floor": 1.0}, "system.log_prob_floor: must be in"),
    (OMARConfig, {"rectification": "max"}, "system.rectification: choose one of mean, sum"),
    (OMIGAConfig, {"alpha": 0.0}, "system.alpha: must be > 0"),
    (OMIGAConfig, {"target_tau": 1.5}, "system.target_tau"),
    (AlberDICEConfig, {"alpha_end": -1.0}, "system.alpha_end: must be > 0"),
    (AlberDICEConfig, {"ratio_max": 0.5}, "system.ratio_max: must be >= 1"),
    (AlberDICEConfig, {"eval_mode": "argmax"}, "system.eval_mode"),
    (AlberDICEConfig, {"time_limit_ends": "bootstrap"}, "system.time_limit_ends: choose one of drop, absorbing"),
])
def test_bad_config_values_are_refused_naming_the_field(config, fields, message):
    with pytest.raises(ConfigError, match=message):
        config(**fields)


@pytest.fixture(scope="module")
def bridge_buffer(tmp_path_factory):
    """60 Optimal + 60 uniform random Bridge episodes, written as a vault and read back."""
    from og_marl_inspo.data.buffer import ReplayBuffer
    from og_marl_inspo.data.collect import experience_from_episodes
    from og_marl_inspo.data.vault import write_vault
    from og_marl_inspo.envs import bridge, get_environment

    env = get_environment("inspo", "bridge", "bridge")
    rel_dir = str(tmp_path_factory.mktemp("vaults"))
    episodes = bridge.optimal_and_random(60, 60)(env, np.random.default_rng(0))
    write_vault(experience_from_episodes(episodes), rel_dir, "inspo", "bridge", "bridge", "Small")
    buffer = ReplayBuffer(2, 64, 1, seed=0)
    buffer.populate_from_vault("inspo", "bridge", "bridge", "Small", rel_dir=rel_dir, environment=env)
    return env, buffer


@pytest.mark.parametrize("name", ["omar", "omiga", "alberdice"])
def test_short_bridge_training_runs_and_evaluates(name, bridge_buffer):
    env, buffer = bridge_buffer
    system = get_system(name, env, None, seed=0, eval_mode="stochastic", **TINY[name])
    logs = [system.train_step(buffer.sample()) for _ in range(10)]
    assert np.isfinite([float(v) for v in logs[-1].values()]).all()
    returns = run_episodes(system, env, 2, seed=0)["episode_returns"]
    assert returns.shape == (2,) and (returns <= 0).all() and (returns > -27).all()  # Bridge's bounds
