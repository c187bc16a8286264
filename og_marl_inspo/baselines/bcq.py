"""BCQ, discrete and independent (algorithms.md 4.2), as the CPA paper uses it.

Fujimoto, Conti, Ghavamzadeh, Pineau, "Benchmarking Batch Deep Reinforcement Learning
Algorithms" (2019, arXiv 1910.01708), discrete BCQ, one learner per agent. Reference
code: sfujim/BCQ `discrete_BCQ/discrete_BCQ.py`; OG-MARL
`og_marl/baselines/tf2_systems/offline/iql_bcq.py` (`IQLBCQSystem`). Per agent i:

    G_i(a|.)   behaviour model, cross-entropy on dataset actions            (BC net)
    A_i(.)     = {a legal : G_i(a|.) / max_a' G_i(a'|.) >= tau}             allowed set
    y          = r + gamma (1 - d) Qbar_i(t+1, argmax_{a in A_i(t+1)} Q_i(t+1, a))
    L_Q        = 1/2 (Q_i(t, a_i) - y)^2
    act        = argmax_{a in A_i} Q_i(a)

Departures (config fields): two networks and two Adams as OG-MARL (the original has one
network with two heads); squared TD error as OG-MARL (the original uses Huber);
`bcq_mask_at_execution` (True, the original; False acts greedily over all legal actions
as OG-MARL's `IQLBCQSystem` does); hard target copies every `target_update_period`.
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
from og_marl_inspo.networks import Torso, masked_logits
from og_marl_inspo.td import td_lambda_targets


@dataclasses.dataclass
class BCQConfig(QConfig):
    threshold: float = 0.3           # tau (discrete BCQ paper 0.3; OG-MARL yaml `bc_threshold` 0.4)
    bc_learning_rate: float = 3e-4   # Adam of the behaviour model G (OG-MARL: same as Q)
    logit_penalty: float = 0.01      # original's 0.01 mean(imitation logits^2); OG-MARL: 0
    bcq_mask_at_execution: bool = True  # act over A_i (original); False: all legal (OG-MARL)

    def __post_init__(self) -> None:
        check_fields(self, self.q_rules() + [
            ("threshold", 0 <= self.threshold <= 1, "must be in [0, 1]"),
            ("bc_learning_rate", self.bc_learning_rate > 0, "must be > 0"),
            ("logit_penalty", self.logit_penalty >= 0, "must be >= 0"),
            ("bcq_mask_at_execution", isinstance(self.bcq_mask_at_execution, bool),
             "must be true or false"),
        ])


def allowed_actions(bc_logits, legals, threshold: float):
    """Discrete BCQ's filter: legal a with G(a|.) / max_a' G(a'|.) >= tau, as 0/1 (..., A).

    G is the softmax over legal actions, so the most likely legal action is always allowed.
    """
    probs = tf.nn.softmax(masked_logits(bc_logits, legals))
    ratio = probs / tf.reduce_max(probs, axis=-1, keepdims=True)
    return tf.cast((ratio >= threshold) & (legals > 0), tf.float32)


def imitation_loss(bc_logits, actions, legals, logit_penalty: float):
    """Behaviour model G: -mean log G(a_i|.) (masked softmax) + penalty * mean(logits^2)."""
    log_probs = tf.nn.log_softmax(masked_logits(bc_logits, legals))
    nll = -tf.reduce_mean(taken(log_probs, actions))
    return nll + logit_penalty * tf.reduce_mean(tf.square(bc_logits))


class BCQSystem(BaseOfflineSystem):
    """Independent discrete BCQ learners, registered as `bcq`."""

    Config = BCQConfig

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = BCQConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        obs_size = int(environment.observation_shape[-1])
        self.q = QNetworks(cfg, self.num_agents, self.num_actions, obs_size, name="q")
        self.behaviour = Torso(cfg.torso, self.num_agents, self.num_actions, cfg.hidden_sizes,
                               layout="shared", add_agent_id=cfg.add_agent_id_to_obs, name="behaviour")
        self.behaviour.unroll(tf.zeros([1, 1, self.num_agents, obs_size]))
        self.optimizer = adam(cfg.learning_rate, self.q.trainable)
        self.bc_optimizer = adam(cfg.bc_learning_rate, self.behaviour.trainable_variables)
        self._tf_train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile, autograph=False)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {"q": self.q, "behaviour": self.behaviour, "optimizer": self.optimizer,
                "bc_optimizer": self.bc_optimizer}

    def initial_state(self, num_episodes: int):
        return (self.q.initial_state(num_episodes), self.behaviour.initial_state(num_episodes))

    def _policy_step(self, obs, legals, state):
        q_state, bc_state = state if state is not None else (None, None)  # MLP torsos: no state
        values, q_state = self.q.step(obs, q_state)
        bc_logits, bc_state = self.behaviour.step(obs, bc_state)
        if self.config.bcq_mask_at_execution:
            legals = allowed_actions(bc_logits, legals, self.config.threshold)
        return masked_logits(values, legals), (q_state, bc_state)

    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        cfg = self.config
        batch = unpack(experience)
        with tf.GradientTape() as bc_tape:
            bc_logits = self.behaviour.unroll(batch.obs, batch.resets)  # (B,T,N,A)
            bc_loss = imitation_loss(bc_logits, batch.actions, batch.legals, cfg.logit_penalty)
        allowed = allowed_actions(tf.stop_gradient(bc_logits), batch.legals, cfg.threshold)  # (B,T,N,A)
        target_q = self.q.target_values(batch.obs, batch.resets)  # (B,T,N,A)
        with tf.GradientTape() as tape:
            q = self.q.values(batch.obs, batch.resets)  # (B,T,N,A)
            x = double_q_bootstrap(q, target_q, allowed)  # Qbar at argmax over A_i, (B,T,N)
            y = td_lambda_targets(batch.rewards[..., None], batch.dones[..., None], x, cfg.gamma, 0.0)
            q_taken = taken(q[:, :-1], batch.actions[:, :-1])  # (B,T-1,N)
            loss = td_loss(q_taken, y)  # discrete BCQ TD loss (squared, as OG-MARL)
        grad_norm = apply_clipped(self.optimizer, tape.gradient(loss, self.q.trainable),
                                  self.q.trainable, cfg.grad_clip)
        variables = self.behaviour.trainable_variables
        apply_clipped(self.bc_optimizer, bc_tape.gradient(bc_loss, variables), variables, cfg.grad_clip)
        self.q.sync()
        return {"td_loss": loss, "bc_loss": bc_loss, "grad_norm": grad_norm,
                "allowed_fraction": tf.reduce_sum(allowed) / tf.reduce_sum(batch.legals),
                "mean_chosen_q_values": tf.reduce_mean(q_taken)}
