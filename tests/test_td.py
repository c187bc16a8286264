"""Shared value-learning helpers: TD(lambda) in a window, target updates, the QMIX mixer."""

import numpy as np
import tensorflow as tf

from og_marl_inspo.networks import QMixer
from og_marl_inspo.td import hard_update, polyak_update, td_lambda_targets


def test_td_lambda_zero_is_one_step_td_and_terminals_cut_the_bootstrap():
    r = tf.constant([[1.0, 2.0, 3.0, 4.0]])
    d = tf.constant([[0.0, 1.0, 0.0, 0.0]])
    x = tf.constant([[10.0, 20.0, 30.0, 40.0]])
    g = td_lambda_targets(r, d, x, gamma=0.5, td_lambda=0.0).numpy()
    np.testing.assert_allclose(g, [[1 + 0.5 * 20, 2.0, 3 + 0.5 * 40]])


def test_td_lambda_one_is_the_discounted_return_to_the_window_end():
    r = tf.constant([[1.0, 2.0, 3.0]])
    d = tf.zeros([1, 3])
    x = tf.constant([[0.0, 100.0, 8.0]])
    g = td_lambda_targets(r, d, x, gamma=0.5, td_lambda=1.0).numpy()
    # G_1 = 2 + 0.5*8 = 6; G_0 = 1 + 0.5*6 = 4 (row 1's bootstrap 100 is ignored at lambda = 1)
    np.testing.assert_allclose(g, [[4.0, 6.0]])
    half = td_lambda_targets(r, d, x, gamma=0.5, td_lambda=0.5).numpy()
    np.testing.assert_allclose(half, [[1 + 0.5 * (0.5 * 100 + 0.5 * 6), 6.0]])


def test_polyak_and_hard_updates():
    target, source = tf.Variable([0.0, 10.0]), tf.Variable([1.0, 20.0])
    polyak_update([target], [source], tau=0.1)
    np.testing.assert_allclose(target.numpy(), [0.1, 11.0], rtol=1e-6)
    hard_update([target], [source])
    np.testing.assert_allclose(target.numpy(), [1.0, 20.0])


def test_qmixer_is_monotonic_and_credits_sum_to_one():
    tf.random.set_seed(0)
    mixer = QMixer(3)
    state = tf.random.normal([4, 7])
    q = tf.random.normal([4, 3])
    with tf.GradientTape() as tape:
        tape.watch(q)
        q_tot = mixer(q, state)
    assert q_tot.shape == (4,)
    assert np.all(tape.gradient(q_tot, q).numpy() >= 0)  # dQ_tot/dq_i >= 0
    k = mixer.k(state).numpy()
    assert k.shape == (4, 3) and np.all(k >= 0)
    np.testing.assert_allclose(k.sum(-1), 1.0, rtol=1e-5)
