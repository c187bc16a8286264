"""CQL, discrete and independent (algorithms.md 4.3), as the CPA paper uses it.

Kumar et al., "Conservative Q-Learning for Offline Reinforcement Learning" (NeurIPS 2020,
arXiv 2006.04779), CQL(H) for discrete actions on top of double DQN, one Q-learner per
agent. Reference code: OG-MARL `og_marl/baselines/tf2_systems/offline/iql_cql.py`
(`IQLCQLSystem`) and its `iql_cql.yaml`. Per agent i and transition t:

    y   = r + gamma (1 - d) Qbar_i(t+1, argmax_{a legal} Q_i(t+1, a))         double DQN
    L   = 1/2 (Q_i(t, a_i) - y)^2 + alpha (logsumexp_a Q_i(t, a) - Q_i(t, a_i))   CQL(H), Eq. 4

Departures (config fields): the logsumexp runs over legal actions only
(`cql_mask_illegal`, ours; OG-MARL sums over all actions); MLP torso for the small
games; the global-norm clip (`grad_clip`) OG-MARL's IQL+CQL does not have.
"""

from __future__ import annotations

import dataclasses
from typing import Dict

import tensorflow as tf

from og_marl_inspo.base import BaseOfflineSystem
from og_marl_inspo.baselines.common import (QConfig, QNetworks, adam, apply_clipped,
                                            double_q_bootstrap, taken, td_loss)
from og_marl_inspo.batch import unpack
from og_marl_inspo.config import check_fields
from og_marl_inspo.networks import masked_logits
from og_marl_inspo.td import td_lambda_targets


@dataclasses.dataclass
class CQLConfig(QConfig):
    alpha: float = 3.0               # CQL weight (OG-MARL yaml `cql_weight` 3.0; constructor 2.0)
    cql_mask_illegal: bool = True    # ours: logsumexp over legal actions; False = OG-MARL parity

    def __post_init__(self) -> None:
        check_fields(self, self.q_rules() + [
            ("alpha", self.alpha >= 0, "must be >= 0"),
            ("cql_mask_illegal", isinstance(self.cql_mask_illegal, bool), "must be true or false"),
        ])


def cql_penalty_eq4(q, q_taken, legals, mask_illegal: bool):
    """CQL(H) regulariser (Kumar et al. Eq. 4, discrete): mean logsumexp_a Q(t, a) - Q(t, a_i).

    q (B,T-1,N,A), q_taken (B,T-1,N), legals (B,T-1,N,A).
    """
    scores = masked_logits(q, legals) if mask_illegal else q
    return tf.reduce_mean(tf.reduce_logsumexp(scores, axis=-1) - q_taken)


class CQLSystem(BaseOfflineSystem):
    """Independent double-DQN learners with the CQL(H) penalty, registered as `cql`."""

    Config = CQLConfig
    ACTING_NETWORK = "q"  # greedy: argmax of each agent's Q_i over legal actions

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = CQLConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        self.q = QNetworks(cfg, self.num_agents, self.num_actions,
                           int(environment.observation_shape[-1]), name="q")
        self.optimizer = adam(cfg.learning_rate, self.q.trainable)
        self._tf_train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile, autograph=False)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {"q": self.q, "optimizer": self.optimizer}

    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        cfg = self.config
        batch = unpack(experience)
        target_q = self.q.target_values(batch.obs, batch.resets)  # (B,T,N,A)
        with tf.GradientTape() as tape:
            q = self.q.values(batch.obs, batch.resets)  # (B,T,N,A)
            x = double_q_bootstrap(q, target_q, batch.legals)  # (B,T,N)
            y = td_lambda_targets(batch.rewards[..., None], batch.dones[..., None], x, cfg.gamma, 0.0)
            q_taken = taken(q[:, :-1], batch.actions[:, :-1])  # (B,T-1,N)
            td = td_loss(q_taken, y)
            penalty = cql_penalty_eq4(q[:, :-1], q_taken, batch.legals[:, :-1], cfg.cql_mask_illegal)
            loss = td + cfg.alpha * penalty
        grad_norm = apply_clipped(self.optimizer, tape.gradient(loss, self.q.trainable),
                                  self.q.trainable, cfg.grad_clip)
        self.q.sync()
        legal_q = tf.where(batch.legals > 0, q, tf.zeros_like(q))
        return {"loss": loss, "td_loss": td, "cql_loss": penalty, "grad_norm": grad_norm,
                "mean_q_values": tf.reduce_sum(legal_q) / tf.reduce_sum(batch.legals),
                "mean_chosen_q_values": tf.reduce_mean(q_taken)}
