"""Target networks and TD targets shared by the value-based systems.

- `polyak_update` and `hard_update`: the two target-network rules of algorithms.md 1.5.
- `td_lambda_targets`: the lambda-return inside a replay window (algorithms.md 1.6),
  the backward recursion
      G_t = r_t + gamma (1 - d_t) [(1 - lambda) X_{t+1} + lambda G_{t+1}],  G_{T-1} := X_{T-1},
  so lambda = 0 is one-step TD and a terminal row cuts both terms.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def polyak_update(targets: Sequence[tf.Variable], sources: Sequence[tf.Variable], tau: float) -> None:
    """theta_bar <- tau theta + (1 - tau) theta_bar, variable by variable."""
    for target, source in zip(targets, sources):
        target.assign(tau * source + (1.0 - tau) * target)


def hard_update(targets: Sequence[tf.Variable], sources: Sequence[tf.Variable]) -> None:
    """theta_bar <- theta (OG-MARL's copy every `target_update_period` steps)."""
    for target, source in zip(targets, sources):
        target.assign(source)


def td_lambda_targets(rewards: tf.Tensor, dones: tf.Tensor, bootstrap: tf.Tensor,
                      gamma: float, td_lambda: float) -> tf.Tensor:
    """Lambda-returns of the T-1 transitions of a window, time on axis 1.

    rewards, dones (B,T,...) and bootstrap X (B,T,...), the target value of each row;
    returns G (B,T-1,...) for t = 0..T-2 (stop-gradient is the caller's choice).
    """
    steps = rewards.shape[1]
    g = bootstrap[:, steps - 1]
    returns = []
    for t in range(steps - 2, -1, -1):  # T is static (the window); unrolled at trace time
        mixed = (1.0 - td_lambda) * bootstrap[:, t + 1] + td_lambda * g
        g = rewards[:, t] + gamma * (1.0 - dones[:, t]) * mixed
        returns.append(g)
    return tf.stack(returns[::-1], axis=1)
