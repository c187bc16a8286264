"""MAICQ: "Believe What You See: Implicit Constraint Approach for Offline Multi-Agent
Reinforcement Learning" (Yang et al., NeurIPS 2021), as OG-MARL's `MAICQSystem`
(algorithms.md 4.4), written with the CPA paper's equation numbers.

Per step, on a window of B sequences of T rows:

  - critic: per-agent Q_i (a shared torso with the agent id), mixed by QMIX into Q_tot;
    the ICQ target uses only the dataset's next joint action, re-weighted in-sample by
    a softmax over the batch (CPA Eq. 1 and Eq. 3);
  - actor: advantage-weighted likelihood with MAICQ's credit k_i(s) of the mixer
    (CPA Eq. 2), the normaliser 1/Z replaced by a softmax over the batch axis;
  - one Adam over policy, critic and mixer; hard target copies every
    `target_update_period` steps; greedy action at evaluation.

The two losses are module functions (`policy_loss_eq2`, `critic_loss_eq3`, and
`maicq_losses` that applies both to a batch) so that CPA's autoregressive MAICQ
(og_marl_inspo/cpa.py) uses exactly these, with autoregressive networks.

Departures (each a config field marked `# ours:`): MLP torso and lr 5e-4 for the
small games; the credit k_i(s) is a constant in the policy loss (the policy loss
trains the policy; the mixer learns from the TD loss only); the losses average over
the B*(T-1) transitions of a window; `reward_scale` multiplies the rewards in the
critic's target (1 by default; CPA's Aloha and Sensor configs use 0.01 and 0.1);
`bc_warmup_steps` trains the policy by BC for the first updates (0 by default). Not
implemented: the original MAICQ variant (state critic, TD(lambda), RMSprop) of
algorithms.md 4.4.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import sonnet as snt
import tensorflow as tf

from og_marl_inspo.base import EVAL_MODES, BaseOfflineSystem
from og_marl_inspo.batch import Batch, unpack
from og_marl_inspo.config import check_fields, is_count
from og_marl_inspo.networks import QMixer, Torso, masked_logits
from og_marl_inspo.td import hard_update


@dataclasses.dataclass
class MAICQConfig:
    torso: str = "mlp"               # "mlp" (matrix, grid games) or "gru" (SMAC, OG-MARL's)
    hidden_sizes: Tuple[int, ...] = (128, 128)  # ours for the MLP; GRU uses the first (OG-MARL 64)
    learning_rate: float = 5e-4      # ours (MLP mode); OG-MARL yaml 3e-4 (SMAC override)
    gamma: float = 0.99
    advantages_beta: float = 0.1     # alpha of the policy weights (OG-MARL `icq_advantages_beta`)
    target_q_taken_beta: float = 1000.0  # alpha of the target weights (`icq_target_q_taken_beta`)
    mixer_embed_dim: int = 32        # QMIX mixer (OG-MARL)
    hypernet_embed_dim: int = 64
    target_update_period: int = 200  # hard copy of critic and mixer (OG-MARL)
    reward_scale: float = 1.0        # ours: rewards are multiplied by this in the critic's target
    bc_warmup_steps: int = 0         # ours: the first this many updates train the policy by BC
    #                                  (every weight of Eq. 2 set to 1); the critic trains throughout
    grad_clip: float = 10.0          # global norm (pymarl, OG-MARL)
    add_agent_id_to_obs: bool = True
    eval_mode: str = "greedy"        # OG-MARL's MAICQ acts greedily
    jit_compile: bool = False

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        check_fields(self, maicq_rules(self))


def maicq_rules(cfg) -> list:
    """Validation of the MAICQ fields (shared with CPA-AR's config)."""
    return [
        ("torso", cfg.torso in ("mlp", "gru"), "choose 'mlp' or 'gru'"),
        ("hidden_sizes", len(cfg.hidden_sizes) > 0 and min(cfg.hidden_sizes) > 0, "needs positive widths"),
        ("learning_rate", cfg.learning_rate > 0, "must be > 0"),
        ("gamma", 0 <= cfg.gamma <= 1, "must be in [0, 1]"),
        ("advantages_beta", cfg.advantages_beta > 0, "must be > 0"),
        ("target_q_taken_beta", cfg.target_q_taken_beta > 0, "must be > 0"),
        ("mixer_embed_dim", cfg.mixer_embed_dim >= 1, "must be >= 1"),
        ("hypernet_embed_dim", cfg.hypernet_embed_dim >= 1, "must be >= 1"),
        ("target_update_period", cfg.target_update_period >= 1, "must be >= 1"),
        ("reward_scale", cfg.reward_scale > 0, "must be > 0"),
        ("bc_warmup_steps", is_count(cfg.bc_warmup_steps), "must be an integer >= 0"),
        ("grad_clip", cfg.grad_clip > 0, "must be > 0"),
        ("eval_mode", cfg.eval_mode in EVAL_MODES, f"choose one of {', '.join(EVAL_MODES)}"),
    ]


# ----------------------------------------------------------------------------- losses
def icq_weights(values: tf.Tensor, temperature: float) -> tf.Tensor:
    """ICQ's in-sample normaliser exp(x/alpha)/Z as OG-MARL computes it: B softmax_b(x/alpha).

    The softmax runs over the batch axis 0, separately for every other index; the
    weights average to 1 and carry no gradient.
    """
    size = tf.cast(tf.shape(values)[0], values.dtype)
    return tf.stop_gradient(size * tf.nn.softmax(values / temperature, axis=0))


def policy_loss_eq2(logpi_taken, advantages, credits, beta):
    """CPA Eq. 2 (MAICQ policy; Eq. 5 with autoregressive inputs), all (B,T-1,N):
    -mean[ k_i(s) * B softmax_b(A_i / beta) * log pi_i(a_i) ]."""
    weights = icq_weights(advantages, beta)
    return -tf.reduce_mean(tf.stop_gradient(credits) * weights * logpi_taken)  # ours: k_i constant


def critic_loss_eq3(q_tot, target_q_tot, rewards, dones, gamma, beta):
    """CPA Eq. 3 (Eq. 7 for AR), all (B,T): y = r + gamma (1 - d) B softmax_b(Qbar'/beta) Qbar'
    on the dataset's next joint action (Eq. 1), loss mean 1/2 (Q_tot(s, a) - y)^2."""
    next_value = icq_weights(target_q_tot, beta) * target_q_tot  # (B,T)
    y = rewards[:, :-1] + gamma * (1.0 - dones[:, :-1]) * next_value[:, 1:]  # (B,T-1)
    return tf.reduce_mean(0.5 * tf.square(tf.stop_gradient(y) - q_tot[:, :-1]))


def maicq_losses(batch: Batch, logits, q, target_q, mixer: QMixer, target_mixer: QMixer, cfg,
                 values=None, advantages=None, bc_only=False):
    """Both MAICQ losses on one batch. logits, q, target_q (B,T,N,A) from any networks
    (per-agent ones for MAICQ, autoregressive ones for CPA-AR) -> (loss, logs).

    `values` (B,T-1,N,A), when given, replaces Q_i in the policy's advantages; they are
    then values of the team (CPA-AR's continuation values), so the credit is uniform, 1/N.
    `advantages` (B,T-1,N), when given, are the team's advantages themselves (CPA-AR's joint
    advantages), again with credit 1/N.
    `bc_only` (a boolean, or a scalar tensor of one) replaces Eq. 2 by BC's -mean log pi_i(a_i):
    the `bc_warmup_steps` phase (ours).
    """
    taken = tf.one_hot(batch.actions, q.shape[-1])  # (B,T,N,A)
    log_pi = tf.nn.log_softmax(masked_logits(logits, batch.legals))  # (B,T,N,A), legal actions only
    q_taken = tf.reduce_sum(taken * q, -1)  # (B,T,N)
    credits = tf.fill(tf.shape(q_taken[:, :-1]), 1.0 / q.shape[-2])  # the team's values: 1/N
    if advantages is None:
        if values is None:
            values, credits = q[:, :-1], mixer.k(batch.state)[:, :-1]  # Q_i and k_i(s), (B,T-1,N,...)
        pi = tf.exp(log_pi[:, :-1])
        advantages = tf.stop_gradient(tf.reduce_sum(taken[:, :-1] * values, -1)
                                      - tf.reduce_sum(pi * values, -1))  # A_i - E_pi, (B,T-1,N)
    logpi_taken = tf.reduce_sum(taken * log_pi, -1)[:, :-1]  # (B,T-1,N)
    policy_loss = tf.where(bc_only, -tf.reduce_mean(logpi_taken),
                           policy_loss_eq2(logpi_taken, advantages, credits, cfg.advantages_beta))
    q_tot = mixer(q_taken, batch.state)  # (B,T)
    target_q_tot = target_mixer(tf.reduce_sum(taken * target_q, -1), batch.state)  # (B,T)
    critic_loss = critic_loss_eq3(q_tot, target_q_tot, cfg.reward_scale * batch.rewards, batch.dones,
                                  cfg.gamma, cfg.target_q_taken_beta)
    logs = {"policy_loss": policy_loss, "critic_loss": critic_loss,
            "q_tot_mean": tf.reduce_mean(q_tot), "advantage_mean": tf.reduce_mean(advantages)}
    return policy_loss + critic_loss, logs


def apply_clipped(optimizer, tape, loss, variables, clip_norm):
    """One optimiser step on `loss` with the gradient clipped by its global norm."""
    grads = tape.gradient(loss, variables)
    grads, _ = tf.clip_by_global_norm(grads, clip_norm)
    optimizer.apply(grads, variables)


# ----------------------------------------------------------------------------- system
class MAICQSystem(BaseOfflineSystem):
    """Multi-agent implicit constraint Q-learning, registered as `maicq`."""

    Config = MAICQConfig

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = MAICQConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        n, a = self.num_agents, self.num_actions

        def torso(name):
            return Torso(cfg.torso, n, a, cfg.hidden_sizes, layout="shared",
                         add_agent_id=cfg.add_agent_id_to_obs, name=name)

        def mixer(name):
            return QMixer(n, cfg.mixer_embed_dim, cfg.hypernet_embed_dim, name=name)

        self.policy, self.critic = torso("policy"), torso("critic")
        self.target_critic = torso("target_critic")
        self.mixer, self.target_mixer = mixer("mixer"), mixer("target_mixer")
        obs = tf.zeros([1, 2, n, int(environment.observation_shape[-1])])
        state = tf.zeros([1, 2, int(environment.state_shape[-1])])
        for net in (self.policy, self.critic, self.target_critic):  # build now: targets copy weights
            net.unroll(obs)
        for net in (self.mixer, self.target_mixer):
            net(tf.zeros([1, 2, n]), state)
            net.k(state)
        self._sync_targets()
        self.optimizer = snt.optimizers.Adam(cfg.learning_rate)
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")
        self._tf_train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile)

    def _sync_targets(self) -> None:
        hard_update(self.target_critic.variables + self.target_mixer.variables,
                    self.critic.variables + self.mixer.variables)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {"policy": self.policy, "critic": self.critic, "target_critic": self.target_critic,
                "mixer": self.mixer, "target_mixer": self.target_mixer, "optimizer": self.optimizer,
                "updates": self.updates}

    def train_step(self, experience) -> Dict[str, tf.Tensor]:
        logs = self._tf_train_step(experience)
        if int(self.updates.numpy()) % self.config.target_update_period == 0:
            self._sync_targets()  # hard target update (OG-MARL)
        return logs

    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        batch = unpack(experience)
        variables = self.policy.trainable_variables + self.critic.trainable_variables + \
            self.mixer.trainable_variables
        target_q = self.target_critic.unroll(batch.obs, batch.resets)  # (B,T,N,A)
        with tf.GradientTape() as tape:
            logits = self.policy.unroll(batch.obs, batch.resets)  # (B,T,N,A)
            q = self.critic.unroll(batch.obs, batch.resets)  # (B,T,N,A)
            loss, logs = maicq_losses(batch, logits, q, target_q, self.mixer, self.target_mixer,
                                      self.config, bc_only=self.updates < self.config.bc_warmup_steps)
        apply_clipped(self.optimizer, tape, loss, variables, self.config.grad_clip)
        self.updates.assign_add(1)
        return logs
