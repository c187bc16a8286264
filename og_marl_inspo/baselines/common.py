"""Q-learning plumbing shared by the value-based baselines (BCQ, CQL, CFCQL, ...).

What every independent or mixed Q-learner here needs, written once:

- `QConfig`: the fields such a system's config shares (algorithms.md 5), to subclass
  with the system's own fields; `q_rules()` gives their `check_fields` rules.
- `QNetworks`: a per-agent Q torso (`networks.Torso`, shared parameters + agent id, as
  OG-MARL's baselines) and its target copy, hard-copied every `target_update_period`
  updates (algorithms.md 1.5) by a branch-free blend that compiles with XLA.
- `taken`: the value of the dataset action, `(..., A)` gathered by `(...)` actions.
- `greedy_actions` / `double_q_bootstrap`: argmax over an allowed set (legal actions,
  or BCQ's filtered set) and the double-DQN value of the target net at that argmax.
- `td_loss`: mean 1/2 (Q - y)^2 with the target held fixed.
- `adam`: an Adam whose moments exist before the first compiled step (one trace).
- `apply_clipped`: one optimiser step with global-norm clipping (algorithms.md 1.8).

A baseline module keeps only its own losses and its own action filter.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import sonnet as snt
import tensorflow as tf

from og_marl_inspo.base import EVAL_MODES
from og_marl_inspo.networks import Torso, masked_logits
from og_marl_inspo.td import polyak_update

TORSOS = ("mlp", "gru")


@dataclasses.dataclass
class QConfig:
    """Fields of every Q-learning baseline; subclasses add theirs and call `check_fields`."""

    gamma: float = 0.99
    learning_rate: float = 3e-4        # Adam (OG-MARL yaml 3e-4)
    torso: str = "mlp"                 # "mlp" (matrix, grid games) or "gru" (SMAC)
    hidden_sizes: Tuple[int, ...] = (64, 64)   # MLP widths; GRU uses the first as its size
    add_agent_id_to_obs: bool = True   # one shared parameter set + one-hot agent id (OG-MARL)
    target_update_period: int = 200    # hard target copy every this many updates (OG-MARL)
    grad_clip: float = 10.0            # global-norm clip (pymarl, OG-MARL's OMAR)
    eval_mode: str = "greedy"          # "greedy" argmax of Q, or "stochastic": sample softmax(Q)
    jit_compile: bool = False          # XLA for the train step (worth it for GRU windows)

    def q_rules(self) -> list:
        """`check_fields` rules of the shared fields."""
        self.hidden_sizes = tuple(self.hidden_sizes)
        return [
            ("gamma", 0 <= self.gamma <= 1, "must be in [0, 1]"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("torso", self.torso in TORSOS, f"choose one of {', '.join(TORSOS)}"),
            ("hidden_sizes", len(self.hidden_sizes) > 0 and min(self.hidden_sizes) > 0,
             "needs positive widths"),
            ("add_agent_id_to_obs", isinstance(self.add_agent_id_to_obs, bool), "must be true or false"),
            ("target_update_period", self.target_update_period >= 1, "must be >= 1"),
            ("grad_clip", self.grad_clip > 0, "must be > 0"),
            ("eval_mode", self.eval_mode in EVAL_MODES, f"choose one of {', '.join(EVAL_MODES)}"),
        ]


class QNetworks(snt.Module):
    """Per-agent Q-values Q_i(o_i history, .) -> (..., N, A) and a target copy.

    `values(obs (B,T,N,O), resets (B,T))` and `target_values(...)` unroll the window;
    `step(obs (E,N,O), state)` acts; `sync()` counts one update and hard-copies the
    target when the count is a multiple of `target_update_period` (so the first update
    also copies, as OG-MARL's `train_step % period == 0`).
    """

    def __init__(self, config: QConfig, num_agents: int, num_actions: int, obs_size: int,
                 name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.period = config.target_update_period

        def torso(net_name: str) -> Torso:
            net = Torso(config.torso, num_agents, num_actions, config.hidden_sizes, layout="shared",
                        add_agent_id=config.add_agent_id_to_obs, name=net_name)
            net.unroll(tf.zeros([1, 1, num_agents, obs_size]))  # build: optimisers need the variables
            return net

        self.online = torso("online")
        self.target = torso("target")
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")
        polyak_update(self.target.variables, self.online.variables, 1.0)

    @property
    def trainable(self) -> Sequence[tf.Variable]:
        return self.online.trainable_variables

    def values(self, obs: tf.Tensor, resets: tf.Tensor) -> tf.Tensor:
        return self.online.unroll(obs, resets)  # (B,T,N,A)

    def target_values(self, obs: tf.Tensor, resets: tf.Tensor) -> tf.Tensor:
        return tf.stop_gradient(self.target.unroll(obs, resets))  # (B,T,N,A)

    def initial_state(self, num_episodes: int):
        return self.online.initial_state(num_episodes)

    def step(self, obs: tf.Tensor, state):
        return self.online.step(obs, state)

    def copy_weight(self) -> tf.Tensor:
        """1.0 on updates that copy the target (the update count is a multiple of the period)."""
        return tf.cast(tf.equal(self.updates % self.period, 0), tf.float32)

    def sync(self, extra_targets: Sequence[tf.Variable] = (), extra_sources: Sequence[tf.Variable] = ()):
        """Count one update; hard target copy on every `period`-th (plus e.g. a target mixer)."""
        blend = self.copy_weight()  # tau in {0, 1}: an exact copy or no change
        polyak_update(list(self.target.variables) + list(extra_targets),
                      list(self.online.variables) + list(extra_sources), blend)
        self.updates.assign_add(1)


def taken(values: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
    """values (..., A) at actions (...) -> (...): the Q-value of each dataset action."""
    return tf.gather(values, actions, batch_dims=len(actions.shape))


def greedy_actions(values: tf.Tensor, allowed: tf.Tensor) -> tf.Tensor:
    """argmax over the allowed actions (allowed (..., A) 0/1) -> (...) int32."""
    return tf.argmax(masked_logits(values, allowed), axis=-1, output_type=tf.int32)


def double_q_bootstrap(online: tf.Tensor, target: tf.Tensor, allowed: tf.Tensor) -> tf.Tensor:
    """Double DQN: target Q at the online net's argmax over the allowed set, (..., A) -> (...)."""
    return tf.stop_gradient(taken(target, greedy_actions(tf.stop_gradient(online), allowed)))


def td_loss(q_taken: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """mean 1/2 (Q(t, a) - y)^2, the target held fixed (any matching shapes)."""
    return tf.reduce_mean(0.5 * tf.square(q_taken - tf.stop_gradient(y)))


def adam(learning_rate: float, variables: Sequence[tf.Variable]) -> snt.optimizers.Adam:
    """`snt.optimizers.Adam` with its moment variables created now.

    Sonnet creates them on the first `apply`; inside a `tf.function` that makes the first
    call trace twice. Creating them eagerly (Sonnet's own `_initialize`, zeros) keeps the
    compiled train step at one trace and gives checkpoints every variable from the start.
    """
    optimizer = snt.optimizers.Adam(learning_rate)
    optimizer._initialize(list(variables))  # noqa: SLF001: the once-only moment setup
    return optimizer


def apply_clipped(optimizer, grads, variables, clip_norm: float) -> tf.Tensor:
    """Clip `grads` by their global norm and apply them; returns the norm before clipping."""
    clipped, norm = tf.clip_by_global_norm(grads, clip_norm)
    optimizer.apply(clipped, variables)
    return norm
