"""CPA (AR and PA), the policy average entropy, and the MAICQ baseline CPA builds on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from og_marl_inspo import cpa
from og_marl_inspo.cpa import (CPAARConfig, CPAPAConfig, CPAPASystem, ar_marginals_eq20,
                               threshold_policy_eq8)
from og_marl_inspo.data.buffer import ReplayBuffer
from og_marl_inspo.data.collect import RECIPES, experience_from_episodes
from og_marl_inspo.envs import get_environment
from og_marl_inspo.errors import ConfigError, TrainingError
from og_marl_inspo.trainer import evaluation_record, mean_entropy_bits, run_episodes

AB, BA = (0, 1), (1, 0)


def matrix_buffer(source, scenario, dataset, batch=256):
    """A one-transition buffer over a matrix-game recipe, built in memory."""
    env = get_environment(source, "matrix", scenario)
    episodes = RECIPES[(source, "matrix", scenario)][dataset].build(env, np.random.default_rng(0))
    experience = {k: ({kk: vv[None] for kk, vv in v.items()} if isinstance(v, dict) else v[None])
                  for k, v in experience_from_episodes(episodes).items()}
    return env, ReplayBuffer(2, batch, 1, seed=0, experience=experience)


@pytest.fixture(scope="module")
def xor_pa():
    """CPA-PA in diverse mode on CPA's XOR `AB+BA` (each agent's marginal is 1/2, 1/2, so
    independent agents would mismatch half the time): AR-teacher steps, then policy agreement."""
    tf.random.set_seed(0)
    env, buffer = matrix_buffer("cpa", "xor", "AB+BA")
    system = CPAPASystem(env, seed=0, hidden_sizes=(32, 32), learning_rate=3e-3, ar_steps=150,
                         beta=0.3, pool_size=2, pa_lr=3e-3, eval_mode="stochastic",
                         entropy_samples=400)
    for _ in range(300):
        system.train_step(buffer.sample())
    return env, system


def test_ar_joint_policy_on_xor_puts_its_mass_on_ab_and_ba(xor_pa):
    _, system = xor_pa
    joint = system.joint_policy(np.ones((1, 1), np.float32))[0]  # pi^beta(a_1, a_2 | s), Eq. 4
    assert joint[AB] + joint[BA] > 0.99
    assert min(joint[AB], joint[BA]) > 0.2  # both optimal joint actions kept (diverse, beta 0.3)


def test_pool_and_key_give_every_agent_the_same_joint_action(xor_pa):
    env, system = xor_pa
    rows = 400
    state, legals = np.ones((rows, 1), np.float32), np.ones((rows, 2, 2), np.float32)
    keys = np.random.default_rng(1).standard_normal((rows, system.key_size())).astype(np.float32)
    # each agent alone, from (s, k) and its own decoder, as in decentralised execution
    parts = np.stack([system.agent_action(i, state, legals, keys) for i in range(2)], 1)
    whole = tf.gather(system.entry_actions(state, legals), system.agreed_index(state, keys),
                      batch_dims=1).numpy()
    np.testing.assert_array_equal(parts, whole)
    pairs = {tuple(p) for p in parts}
    assert pairs == {AB, BA}  # agreement: only matched joint actions, and both of them
    out = run_episodes(system, env, 500, seed=2)
    assert out["episode_returns"].mean() == 1.0
    record = evaluation_record(system, env, 0, 300, seed=0)
    assert record["policy_average_entropy"] == pytest.approx(1.0, abs=0.1)  # Eq. 21: 1/2, 1/2


def test_greedy_pa_and_ar_are_deterministic_and_solve_xor(xor_pa):
    env, system = xor_pa
    system.eval_mode = "greedy"
    try:
        record = evaluation_record(system, env, 0, 200, seed=0)
    finally:
        system.eval_mode = "stochastic"
    assert record["episode_return_mean"] == 1.0 and record["policy_average_entropy"] == 0.0
    assert record["teacher_agreement"] == 1.0  # PA's joint action is the AR teacher's


def test_teacher_agreement_counts_the_agents_that_act_as_the_ar_teacher(xor_pa, monkeypatch):
    env, system = xor_pa
    distilled = system.entry_actions

    def second_agent_flipped(state, legals):  # agent 2 always takes the other action
        return tf.constant(distilled(state, legals).numpy() ^ np.array([0, 1]))

    monkeypatch.setattr(system, "entry_actions", second_agent_flipped)
    monkeypatch.setattr(system, "eval_mode", "greedy")
    record = evaluation_record(system, env, 0, 50, seed=0)
    assert record["teacher_agreement"] == 0.5 and record["episode_return_mean"] == 0.0
    monkeypatch.setattr(system, "eval_mode", "stochastic")  # no single teacher action to compare
    assert "teacher_agreement" not in evaluation_record(system, env, 0, 20, seed=0)


def test_shared_decoders_tell_the_agents_apart_by_their_id_on_xor():
    """One decoder MLP for every agent (ours): on AB+BA both agents read the same (e', s), so
    only the appended one-hot id lets them decode different parts of the teacher's AB or BA."""
    tf.random.set_seed(0)
    env, buffer = matrix_buffer("cpa", "xor", "AB+BA")
    system = CPAPASystem(env, seed=0, hidden_sizes=(32, 32), learning_rate=3e-3, ar_steps=150,
                         pa_lr=3e-3, eval_mode="greedy", decoder_layout="shared")
    for _ in range(300):
        system.train_step(buffer.sample())
    kernels = [v for v in system.decoder.trainable_variables if "w:" in v.name]
    assert kernels and all(v.shape.rank == 2 for v in kernels)  # no per-agent stack
    assert system.config.code_dim + 1 + 2 in {v.shape[0] for v in kernels}  # [e', s, one-hot(i)]
    record = evaluation_record(system, env, 0, 50, seed=0)
    assert record["episode_return_mean"] == 1.0 and record["teacher_agreement"] == 1.0


def test_repertoire_decode_takes_the_most_likely_legal_teacher_joint_action():
    # 3 agents, 2 actions; each agent's own argmax gives (0, 0, 0), a joint action the teacher never took
    log_p = tf.math.log(tf.constant([[[0.6, 0.4], [0.7, 0.3], [0.5, 0.5]]]))
    repertoire = tf.constant([[1, 0, 1], [0, 1, 0]])  # likelihoods 0.4*0.7*0.5 = 0.14 and 0.09
    legals = np.ones((1, 3, 2), np.float32)
    np.testing.assert_array_equal(cpa.repertoire_decode(log_p, legals, repertoire), [[1, 0, 1]])
    legals[0, 0, 1] = 0.0  # agent 0 may not play 1: only (0, 1, 0) is legal
    np.testing.assert_array_equal(cpa.repertoire_decode(log_p, legals, repertoire), [[0, 1, 0]])
    legals[0, 1, 1] = 0.0  # neither is legal: each agent's own legal argmax
    np.testing.assert_array_equal(cpa.repertoire_decode(log_p, legals, repertoire), [[0, 0, 0]])


def test_repertoire_pa_acts_only_joint_actions_its_teacher_produced(monkeypatch):
    """`joint_decoding="repertoire"` (ours): distillation records the teacher's distinct joint
    actions (AB and BA on XOR AB+BA), and every agent, decoding alone from (s, k), takes its
    part of one of them, where Eq. 12's separate argmaxes can combine into a mismatch."""
    tf.random.set_seed(0)
    env, buffer = matrix_buffer("cpa", "xor", "AB+BA")
    system = CPAPASystem(env, seed=0, hidden_sizes=(32, 32), learning_rate=3e-3, ar_steps=150,
                         beta=0.3, pool_size=2, eval_mode="stochastic", joint_decoding="repertoire")
    for _ in range(155):
        system.train_step(buffer.sample())
    count = int(system.repertoire_count.numpy())
    assert count == 2 and {tuple(r) for r in system.repertoire[:count].numpy()} == {AB, BA}

    def both_lean_to_a(code, state):  # decoders as they may read a state unlike the data's
        p = tf.constant([[0.6, 0.4], [0.55, 0.45]])  # AB 0.27, BA 0.22, AA 0.33
        return tf.math.log(tf.broadcast_to(p, tf.concat([tf.shape(code)[:2], [2, 2]], 0)))

    monkeypatch.setattr(system, "_decode", both_lean_to_a)
    rows = 50
    state, legals = np.ones((rows, 1), np.float32), np.ones((rows, 2, 2), np.float32)
    keys = np.random.default_rng(1).standard_normal((rows, system.key_size())).astype(np.float32)
    parts = np.stack([system.agent_action(i, state, legals, keys) for i in range(2)], 1)
    assert {tuple(p) for p in parts} == {AB}
    assert run_episodes(system, env, 50, seed=2)["episode_returns"].mean() == 1.0
    monkeypatch.setattr(system.config, "joint_decoding", "independent")
    assert run_episodes(system, env, 50, seed=2)["episode_returns"].mean() == 0.0  # AA
    small = CPAPASystem(env, seed=0, hidden_sizes=(8,), joint_decoding="repertoire", repertoire_size=1)
    with pytest.raises(TrainingError, match="system.repertoire_size"):
        small.remember(np.array([AB, BA, AB]))


def test_repertoire_of_collision_free_joint_actions_keeps_aloha_free_of_collisions(monkeypatch):
    """On Aloha (10 agents, neighbours collide when both transmit) agents decoding from
    untrained, random decoders collide when each takes its own argmax, and never when they
    take their parts of a repertoire holding only the two experts' independent sets."""
    env = get_environment("cpa", "aloha", "aloha")
    system = CPAPASystem(env, seed=0, hidden_sizes=(8,), eval_mode="greedy", ar_steps=0,
                         decoder_layout="shared", joint_decoding="repertoire")
    system.remember(np.array([[1, 0] * 5, [0, 1] * 5]))  # even agents transmit, or odd ones
    rng = np.random.default_rng(0)

    def random_decoders(code, state):  # log-probs that differ in every state and agent
        shape = tuple(code.shape[:2]) + (10, 2)
        return tf.nn.log_softmax(tf.constant(rng.normal(0.0, 3.0, shape), tf.float32))

    monkeypatch.setattr(system, "_decode", random_decoders)
    monkeypatch.setattr(system, "greedy_joint_action", lambda s, legals: np.zeros((len(s), 10), np.int64))
    together = run_episodes(system, env, 20, seed=1)
    assert together["collisions"].sum() == 0 and together["packets_delivered"].mean() > 20
    monkeypatch.setattr(system.config, "joint_decoding", "independent")
    assert run_episodes(system, env, 20, seed=1)["collisions"].mean() > 5


def test_policy_average_entropy_equals_hand_computed_values():
    assert mean_entropy_bits(np.array([[[0.5, 0.5], [1.0, 0.0]]])) == pytest.approx([0.5])
    assert mean_entropy_bits(np.full((2, 3, 4), 0.25)) == pytest.approx([2.0, 2.0])

    # 3 agents: pi_1 = (3/4, 1/4); agent 2 copies agent 1; agent 3 is (1/2, 1/2) whatever came before
    def step(i, index, actions):
        if i == 0:
            return np.tile([0.75, 0.25], (len(index), 1))
        if i == 1:
            return np.eye(2)[actions[:, 0]]
        return np.full((len(index), 2), 0.5)

    h_quarter = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))  # 0.8113 bits
    exact = ar_marginals_eq20(step, 2, 3, 2, np.random.default_rng(0))  # Eq. 20, enumerated
    np.testing.assert_allclose(exact[0], [[0.75, 0.25], [0.75, 0.25], [0.5, 0.5]])
    assert mean_entropy_bits(exact)[0] == pytest.approx((2 * h_quarter + 1.0) / 3)
    original = cpa.MAX_ENUMERATED_PREFIXES
    cpa.MAX_ENUMERATED_PREFIXES = 1  # force the Monte Carlo estimate
    try:
        sampled = ar_marginals_eq20(step, 2, 3, 2, np.random.default_rng(0), samples=20_000)
    finally:
        cpa.MAX_ENUMERATED_PREFIXES = original
    np.testing.assert_allclose(sampled, exact, atol=0.02)


def test_eq8_threshold_keeps_actions_above_beta():
    probs = tf.constant([[0.6, 0.3, 0.1]])
    kept = threshold_policy_eq8(probs, 0.25).numpy()[0]
    assert kept[2] == 0.0 and kept[0] == pytest.approx(math.exp(0.6) / (math.exp(0.6) + math.exp(0.3)))
    renormalised = threshold_policy_eq8(probs, 0.25, "renormalised").numpy()[0]
    np.testing.assert_allclose(renormalised, [2 / 3, 1 / 3, 0], rtol=1e-6)
    np.testing.assert_array_equal(threshold_policy_eq8(probs, 1.0).numpy()[0], [1.0, 0.0, 0.0])


@pytest.mark.parametrize("config, field", [
    (lambda: CPAARConfig(beta=0.0), "system.beta"),
    (lambda: CPAARConfig(beta=1.5), "system.beta"),
    (lambda: CPAPAConfig(pool_size=0), "system.pool_size"),
    (lambda: CPAPAConfig(pool_size=2.5), "system.pool_size"),
    (lambda: CPAPAConfig(key_mode="random"), "system.key_mode"),
    (lambda: CPAARConfig(advantages="team"), "system.advantages"),
    (lambda: CPAPAConfig(decoder_layout="tied"), "system.decoder_layout"),
    (lambda: CPAPAConfig(joint_decoding="vote"), "system.joint_decoding"),
    (lambda: CPAPAConfig(repertoire_size=0), "system.repertoire_size"),
    (lambda: CPAARConfig(bc_warmup_steps=-1), "system.bc_warmup_steps"),
    (lambda: CPAARConfig(bc_warmup_steps=2.5), "system.bc_warmup_steps"),
])
def test_bad_beta_or_pool_size_is_refused_naming_the_field(config, field):
    with pytest.raises(ConfigError, match=field):
        config()


def test_maicq_trains_on_xor_b_and_acts_legally():
    from og_marl_inspo.baselines.maicq import MAICQSystem

    tf.random.set_seed(0)
    env, buffer = matrix_buffer("inspo", "xor", "B", batch=128)
    system = MAICQSystem(env, seed=0, hidden_sizes=(32, 32), learning_rate=3e-3)
    logs = [system.train_step(buffer.sample()) for _ in range(100)]
    critic = [float(l["critic_loss"]) for l in logs]
    assert np.mean(critic[-10:]) < 0.2 * np.mean(critic[:10])
    assert all(np.isfinite(float(v)) for v in logs[-1].values())
    legals = np.ones((64, 2, 2), np.float32)
    legals[:, 0, 1] = 0.0  # agent 0 may only play A
    system.reset(64)
    actions = system.act(np.ones((64, 2, 1), np.float32), legals, np.random.default_rng(0))
    assert (actions[:, 0] == 0).all() and system.last_marginals[:, 0, 1].max() == 0.0


def test_bc_warmup_trains_the_policy_by_bc_for_its_steps_then_by_eq2():
    from og_marl_inspo.baselines.maicq import MAICQSystem
    from og_marl_inspo.batch import unpack
    from og_marl_inspo.networks import masked_logits

    tf.random.set_seed(0)
    env, buffer = matrix_buffer("inspo", "xor", "B", batch=64)
    system = MAICQSystem(env, seed=0, hidden_sizes=(16, 16), bc_warmup_steps=2)
    for step in range(4):
        experience = buffer.sample()
        batch = unpack(experience)  # BC's loss under the policy as it is before this update
        log_pi = tf.nn.log_softmax(masked_logits(system.policy.unroll(batch.obs, batch.resets), batch.legals))
        taken = np.take_along_axis(log_pi.numpy(), batch.actions.numpy()[..., None], -1)[:, :-1]
        logged = float(system.train_step(experience)["policy_loss"])
        if step < 2:
            assert logged == pytest.approx(-taken.mean(), rel=1e-5)
        else:  # Eq. 2's credit- and advantage-weighted likelihood from update 3 on
            assert abs(logged + taken.mean()) > 1e-3


def test_revival_pulls_only_unchosen_pool_entries_toward_encoded_labels():
    pool = tf.Variable(tf.constant([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]],
                                    [[0.0, 0.0], [3.0, 0.0], [0.0, 1.0]]]))  # (M=2, c=3, d=2)
    z_e = tf.Variable(tf.constant([[0.0, 0.0], [1.0, 1.0]]))
    counts = tf.constant([2, 0, 0])  # both rows chose entry 0: entries 1 and 2 are dead
    row_pick = tf.constant([1, 0, 1])
    with tf.GradientTape() as tape:
        loss = cpa.revival_loss(pool, z_e, counts, row_pick)
    # entry 1 at row 0: |(1,0) - (0,0)|^2 = 1; entry 2 at row 1: |(0,1) - (1,1)|^2 = 1; mean 1
    assert float(loss) == pytest.approx(1.0)
    grad_pool, grad_z = tape.gradient(loss, [pool, z_e])
    assert np.all(grad_pool.numpy()[:, 0] == 0)  # the chosen entry is left to Eq. 10
    assert grad_pool.numpy()[0, 1] == pytest.approx([1.0, 0.0])  # d/de of |e - z|^2 over the 2 dead entries
    assert grad_z is None  # labels are targets, not trained by the revival
    assert float(cpa.revival_loss(pool, z_e, tf.constant([1, 1, 0]), row_pick)) == pytest.approx(1.0)
    assert float(cpa.revival_loss(pool, z_e, tf.constant([1, 1, 1]), row_pick)) == 0.0


@pytest.fixture(scope="module")
def cpa_xor_vaults(tmp_path_factory):
    from og_marl_inspo.data.collect import build_datasets

    root = str(tmp_path_factory.mktemp("cpa_vaults"))
    build_datasets("cpa", "matrix", "xor", ["AB+BA"], rel_dir=root)
    return root


def _cpa_run_config(system, rel_dir, steps, *overrides):
    from og_marl_inspo.cli import run_config

    config = run_config(system, "cpa", "matrix", "xor", "AB+BA", 1, train_steps=steps, rel_dir=rel_dir,
                        overrides=["system.hidden_sizes=(32, 32)", *overrides])
    with config.unlocked():
        config.evaluation.update(every=steps, episodes=20, final_multiplier=1)
        config.checkpoint_every = steps
    return config


def test_pa_starts_from_a_finished_ar_teacher_of_the_same_dataset_and_seed(cpa_xor_vaults, tmp_path):
    from og_marl_inspo.launch import restore, run

    run(_cpa_run_config("cpa_ar", cpa_xor_vaults, 120), str(tmp_path), progress=False)
    teacher, _ = restore(tmp_path / "cpa/matrix/xor/AB+BA/cpa_ar/seed_1.json")
    template = str(tmp_path / "{source}/{env}/{scenario}/{dataset}/cpa_ar/seed_{seed}_checkpoints")
    config = _cpa_run_config("cpa_pa", cpa_xor_vaults, 30, "system.ar_steps=120", "system.pool_size=2",
                             f"system.teacher_checkpoint={template}")
    results = run(config, str(tmp_path / "pa"), progress=False)
    filled = results["config"]["system"]["teacher_checkpoint"]
    assert filled == str(tmp_path / "cpa/matrix/xor/AB+BA/cpa_ar/seed_1_checkpoints")
    pa, _ = restore(tmp_path / "pa/cpa/matrix/xor/AB+BA/cpa_pa/seed_1.json")
    # all 30 steps distilled; the teacher is the cpa_ar run's, untouched by them
    assert int(pa.pa_updates.numpy()) == 30 and int(pa.ar_updates.numpy()) == 120
    for mine, theirs in zip(pa.policy.variables, teacher.policy.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_a_missing_or_mismatched_teacher_is_refused_naming_the_field(cpa_xor_vaults, tmp_path):
    from og_marl_inspo.envs import get_environment
    from og_marl_inspo.launch import run

    env = get_environment("cpa", "matrix", "xor")
    with pytest.raises(ConfigError, match="system.teacher_checkpoint: no checkpoint"):
        CPAPASystem(env, seed=0, teacher_checkpoint=str(tmp_path / "nothing"))
    run(_cpa_run_config("cpa_ar", cpa_xor_vaults, 20), str(tmp_path), progress=False)
    with pytest.raises(ConfigError, match="system.teacher_checkpoint: .* is not a cpa_ar teacher"):
        CPAPASystem(env, seed=0, hidden_sizes=(16, 16),
                    teacher_checkpoint=str(tmp_path / "cpa/matrix/xor/AB+BA/cpa_ar/seed_1_checkpoints"))
    with pytest.raises(ConfigError, match="system.teacher_checkpoint: .*cannot be filled"):
        run(_cpa_run_config("cpa_pa", cpa_xor_vaults, 5, "system.teacher_checkpoint=runs/{task}"),
            str(tmp_path), progress=False)


def test_cpa_table_distils_the_finished_ar_runs_instead_of_training_new_teachers(tmp_path, monkeypatch):
    from og_marl_inspo import sweep as sweep_module
    from og_marl_inspo.data import collect

    calls = []
    monkeypatch.setattr(collect, "build_datasets", lambda *args, **kwargs: None)
    monkeypatch.setattr(sweep_module, "sweep", lambda runs, out, workers, overrides, train_steps=None, **_:
                        calls.append(({r.system for r in runs}, {r.env for r in runs}, len(runs),
                                      overrides, train_steps)) or [])
    sweep_module.reproduce("cpa-table1", seeds=2, results_dir=str(tmp_path), rel_dir=str(tmp_path),
                           only=["cpa_ar", "cpa_pa"])
    bridge_only = len(calls)
    sweep_module.reproduce("cpa-table1", seeds=2, results_dir=str(tmp_path), rel_dir=str(tmp_path),
                           only=["cpa_ar", "cpa_pa"], envs=["bridge"])
    assert [(systems, envs, n) for systems, envs, n, _, _ in calls[bridge_only:]] == [
        ({"cpa_ar"}, {"bridge"}, 6), ({"cpa_pa"}, {"bridge"}, 6)]  # the --envs filter
    with pytest.raises(ValueError, match="cpa-table1 has no rows on smac_v1; its environments: "
                                         "matrix, bridge, sensor, aloha"):
        sweep_module.reproduce("cpa-table1", results_dir=str(tmp_path), envs=["smac_v1"])
    calls = calls[:bridge_only]
    teacher = (f"system.teacher_checkpoint={tmp_path}/{{source}}/{{env}}/{{scenario}}/{{dataset}}/cpa_ar/"
               "seed_{seed}_checkpoints")
    assert calls[0] == ({"cpa_ar"}, {"matrix", "bridge", "sensor", "aloha"}, 30, ["system.eval_mode=greedy"], None)
    assert all(systems == {"cpa_pa"} and overrides == ["system.eval_mode=greedy", teacher]
               for systems, _, _, overrides, _ in calls[1:])
    # one sweep per task, 3 datasets x 2 seeds each, only the distillation steps (training - AR steps)
    assert sorted((envs.pop(), n, steps) for _, envs, n, _, steps in calls[1:]) == [
        ("aloha", 6, 5000), ("bridge", 6, 5000), ("matrix", 6, 3000), ("matrix", 6, 3000), ("sensor", 6, 5000)]


def untrained_permutation_ar(tf_seed: int, rng_seed: int):
    """An untrained CPA-AR on Permutation (4 agents, 4 actions) and 6 random rows of
    state, joint action and all-legal masks."""
    env = get_environment("cpa", "matrix", "permutation")
    tf.random.set_seed(tf_seed)
    system = cpa.CPAARSystem(env, seed=0, hidden_sizes=(16, 16))
    rng = np.random.default_rng(rng_seed)
    state = tf.constant(rng.normal(size=(6, int(env.state_shape[-1]))), tf.float32)
    actions = rng.integers(0, 4, size=(6, 4)).astype(np.int32)
    return system, state, actions, np.ones((6, 4, 4), np.float32)


def q_tot_of(system, state, joint: np.ndarray) -> np.ndarray:
    """The mixer's Q_tot(s, a) of the critic's Q_i on the joint action `joint` (rows,N)."""
    q = system.critic(state, tf.constant(joint)).numpy()  # (rows,N,A)
    return system.mixer(tf.constant(np.take_along_axis(q, joint[..., None], -1)[..., 0]), state).numpy()


def test_continuation_values_are_q_tot_after_the_later_agents_greedy_actions():
    system, state, actions, legals = untrained_permutation_ar(3, 0)
    rows, n, a = legals.shape
    legals[:, 2, [0, 1]] = 0.0  # agent 2 may only continue with actions 2 or 3
    values = cpa.continuation_values(system.policy, system.critic, system.mixer, state,
                                     tf.constant(actions), tf.constant(legals)).numpy()
    assert values.shape == (rows, n, a)
    for i in range(n):
        for x in range(a):
            joint = actions.copy()
            joint[:, i] = x
            for j in range(i + 1, n):  # the definition, one agent at a time
                logits = system.policy.agent(state, tf.constant(joint), j).numpy()
                joint[:, j] = np.where(legals[:, j] > 0, logits, -np.inf).argmax(-1)
            if i < 2:
                assert set(joint[:, 2]) <= {2, 3}
            np.testing.assert_allclose(values[:, i, x], q_tot_of(system, state, joint), rtol=1e-4, atol=1e-4)


def test_joint_advantages_are_q_tot_of_the_data_minus_q_tot_of_the_greedy_joint_action():
    system, state, actions, legals = untrained_permutation_ar(4, 1)
    rows, n, a = legals.shape
    legals[:, 1, 3] = 0.0  # agent 1's greedy action must avoid action 3
    advantages = cpa.joint_advantages(system.policy, system.critic, system.mixer, state,
                                      tf.constant(actions), tf.constant(legals)).numpy()
    greedy = np.zeros_like(actions)
    for j in range(n):  # the definition, one agent at a time from nothing
        logits = system.policy.agent(state, tf.constant(greedy), j).numpy()
        greedy[:, j] = np.where(legals[:, j] > 0, logits, -np.inf).argmax(-1)
    assert not (greedy[:, 1] == 3).any()
    np.testing.assert_array_equal(greedy, system.greedy_joint_action(state, tf.constant(legals)))
    expected = q_tot_of(system, state, actions) - q_tot_of(system, state, greedy)
    assert advantages.shape == (rows, n)
    for i in range(n):  # one team advantage, shared by every agent
        np.testing.assert_allclose(advantages[:, i], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("advantages", ["continuation", "joint"])
def test_ar_with_team_advantages_solves_xor_complete(advantages):
    """Complete holds all four joint actions, so imitation alone would not solve it."""
    env, buffer = matrix_buffer("cpa", "xor", "Complete")
    tf.random.set_seed(0)
    system = cpa.CPAARSystem(env, seed=0, hidden_sizes=(32, 32), learning_rate=3e-3,
                             advantages=advantages, advantages_beta=0.3)
    for _ in range(300):
        system.train_step(buffer.sample())
    joint = system.joint_policy(np.ones((1, int(env.state_shape[-1])), np.float32))[0]
    assert joint[AB] + joint[BA] > 0.95


def test_reward_scale_scales_the_critics_target_and_is_checked():
    env, buffer = matrix_buffer("cpa", "xor", "AB+BA")  # every row earns 1
    q_tot = {}
    for scale in (1.0, 0.25):
        tf.random.set_seed(0)
        system = cpa.CPAARSystem(env, seed=0, hidden_sizes=(32, 32), learning_rate=3e-3, reward_scale=scale)
        for _ in range(300):
            logs = system.train_step(buffer.sample())
        q_tot[scale] = float(logs["q_tot_mean"])
    assert q_tot[1.0] == pytest.approx(1.0, abs=0.1) and q_tot[0.25] == pytest.approx(0.25, abs=0.05)
    with pytest.raises(ConfigError, match="system.reward_scale"):
        CPAARConfig(reward_scale=0.0)


def test_ar_solves_permutation_poor_with_its_matrix_config_at_the_seed_that_failed(tmp_path):
    """Seed 2 stayed at 0.00 with MAICQ's alpha_pi 0.1; the matrix config's 0.3 solves it. Its
    joint advantages keep every action that collides with an earlier agent's below Fig. 3's
    beta_4 = 1/6 (agent Q_i let them reach 0.27), so Eq. 8 at beta_4 plays only permutations."""
    import dataclasses
    import itertools

    from og_marl_inspo.cli import run_config
    from og_marl_inspo.data.collect import build_datasets
    from og_marl_inspo.launch import restore, run

    build_datasets("cpa", "matrix", "permutation", ["Poor"], rel_dir=str(tmp_path))
    config = run_config("cpa_ar", "cpa", "matrix", "permutation", "Poor", 2, rel_dir=str(tmp_path),
                        overrides=["system.eval_mode=greedy"])
    assert config.system.advantages_beta == 0.3 and config.training_steps == 800
    assert config.system.advantages == "joint"
    with config.unlocked():
        config.evaluation.update(every=800, episodes=20, final_multiplier=1)
    assert run(config, str(tmp_path), progress=False)["final"]["episode_return_mean"] == 1.0
    system, _ = restore(tmp_path / "cpa/matrix/permutation/Poor/cpa_ar/seed_2.json")
    system.config = dataclasses.replace(system.config, beta=1 / 6)
    joint = system.joint_policy(np.ones((1, 1), np.float32))[0]
    assert sum(joint[p] for p in itertools.permutations(range(4))) > 0.99
