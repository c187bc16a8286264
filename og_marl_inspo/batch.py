"""Unpacking a sampled Experience into the tensors every loss uses (algorithms.md 1.1).

    obs     (B,T,N,O) float32     actions (B,T,N) int32     rewards (B,T) team reward
    dones   (B,T) terminal        resets  (B,T) terminal or truncation (RNN resets)
    legals  (B,T,N,A) float32     state   (B,T,S) float32
    timeouts (B,T) a terminal that is a time-limit end (terminal and truncation both set)
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class Batch(NamedTuple):
    obs: tf.Tensor
    actions: tf.Tensor
    rewards: tf.Tensor
    dones: tf.Tensor
    resets: tf.Tensor
    legals: tf.Tensor
    state: tf.Tensor
    timeouts: tf.Tensor


def unpack(experience) -> Batch:
    """Cast OG-MARL's Experience dict (numpy or tensors) to a `Batch`."""
    terminals = tf.cast(experience["terminals"], tf.float32)[..., 0]  # (B,T) agent 0's, as OG-MARL
    truncations = tf.cast(experience["truncations"], tf.float32)[..., 0]
    return Batch(
        obs=tf.cast(experience["observations"], tf.float32),
        actions=tf.cast(experience["actions"], tf.int32),
        rewards=tf.cast(experience["rewards"], tf.float32)[..., 0],
        dones=terminals,
        resets=tf.maximum(terminals, truncations),
        legals=tf.cast(experience["infos"]["legals"], tf.float32),
        state=tf.cast(experience["infos"]["state"], tf.float32),
        timeouts=terminals * truncations,
    )
