"""CFCQL (algorithms.md 4.6): QMIX with a counterfactual, per-agent CQL penalty.

Shao, Qu, Chen, Zhang, Ji, "Counterfactual Conservative Q Learning for Offline
Multi-agent Reinforcement Learning" (NeurIPS 2023, arXiv 2309.12696). Reference code:
thu-rllab/CFCQL `discrete/src/learners/cq_learner.py`, `config/algs/cql_qmix.yaml`,
`discrete/README.md` (per-dataset alpha and softmax temperature). One training step:

    Q_tot(t, a)   = Mixer(Q_1(t, a_1), ..., Q_N(t, a_N); s_t)                QMIX
    X_t           = Mixerbar(Qbar_i(t, argmax_{a legal} Q_i(t, a)); s_t)       double Q
    G_t           = TD(lambda) returns of X inside the window (algorithms.md 1.6)
    L_TD          = mean 1/2 (Q_tot(t, a) - G_t)^2
    Q_tot^(i,j)   = Q_tot with agent i's entry replaced by Q_i(t, j)          counterfactual
    L_CF          = alpha mean_t [ sum_i lambda_i(t) logsumexp_{j legal} Q_tot^(i,j)(t) - Q_tot(t, a) ]
    lambda_i(t)   = softmax_i( tau KL( softmax_j Q_tot^(i,j)(t) || beta_i(.|t) ) ), held fixed
    L             = L_TD + L_CF

beta_i is a behaviour-cloning policy trained first (the repository trains it until its
loss stalls, then freezes it). tau = 0 gives uniform weights 1/N and needs no beta;
tau >= 100 is the repository's one-hot argmax.

Departures (config fields, `# ours:`): beta is trained for a fixed `bc_steps` calls of
`train_step` instead of "until the loss has not improved for 20 steps"; the target
copy counts updates (`target_update_period`), not episodes; the Q-network input is the
observation and agent id, without the repository's last action (`networks.Torso`); MLP
torso and one-step targets (`td_lambda: 0`) for the small games.
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
from og_marl_inspo.networks import QMixer, Torso, masked_logits
from og_marl_inspo.td import polyak_update, td_lambda_targets

ONE_HOT_TEMPERATURE = 100.0  # the repository's `softmax_temp == 100`: lambda = one-hot argmax KL


@dataclasses.dataclass
class CFCQLConfig(QConfig):
    learning_rate: float = 1e-3      # Adam over agents and mixer (cql_qmix.yaml `lr`)
    alpha: float = 50.0              # alpha_g, weight of L_CF (yaml `global_cql_alpha`; README per dataset)
    softmax_temp: float = 0.0        # tau of lambda_i; 0 = uniform 1/N (yaml `sparse_lambda: False`)
    td_lambda: float = 0.6           # yaml 0.6 (0.3 for 6h_vs_8z)
    mixer_embed_dim: int = 32        # QMIX `mixing_embed_dim`
    hypernet_embed: int = 64         # QMIX `hypernet_embed`
    bc_steps: int = 2000             # ours: train_step calls spent on beta first (only when tau > 0)
    bc_learning_rate: float = 1e-3   # Adam of beta (the repository uses `lr`)
    kl_epsilon: float = 1e-5         # added to both distributions in the KL (repository's 0.00001)

    def __post_init__(self) -> None:
        check_fields(self, self.q_rules() + [
            ("alpha", self.alpha >= 0, "must be >= 0"),
            ("softmax_temp", self.softmax_temp >= 0, "must be >= 0"),
            ("td_lambda", 0 <= self.td_lambda <= 1, "must be in [0, 1]"),
            ("mixer_embed_dim", self.mixer_embed_dim >= 1, "must be >= 1"),
            ("hypernet_embed", self.hypernet_embed >= 1, "must be >= 1"),
            ("bc_steps", self.bc_steps >= 0, "must be >= 0"),
            ("bc_learning_rate", self.bc_learning_rate > 0, "must be > 0"),
            ("kl_epsilon", 0 < self.kl_epsilon < 1, "must be in (0, 1)"),
        ])


# ----------------------------------------------------------------------------- losses
def counterfactual_q_tot(mixer, q, q_taken, state, legals):
    """Q_tot^(i,j): the mixer with agent i's entry replaced by Q_i(t, j), illegal j masked.

    q (B,T,N,A), q_taken (B,T,N), state (B,T,S), legals (B,T,N,A) -> (B,T,N,A), computed
    as one mixer call on the (B,T,N,A,N) tensor of agent-Q vectors.
    """
    n = q.shape[-2]
    own = tf.eye(n)[:, None, :]  # (N,1,N): entry k == i
    joint = q_taken[:, :, None, None, :] * (1.0 - own) + q[..., None] * own  # (B,T,N,A,N)
    states = tf.broadcast_to(state[:, :, None, None, :],
                             tf.concat([tf.shape(q), tf.shape(state)[-1:]], 0))  # (B,T,N,A,S)
    return masked_logits(mixer(joint, states), legals)  # (B,T,N,A)


def agent_weights(cf_q_tot, beta_probs, legals, temperature: float, epsilon: float):
    """lambda_i = softmax_i(tau KL(softmax_j Q_tot^(i,j) || beta_i)), over legal j, held fixed.

    cf_q_tot, beta_probs, legals (B,T,N,A) -> (B,T,N); one-hot argmax for tau >= 100.
    """
    mu = tf.nn.softmax(cf_q_tot) + epsilon
    kl = tf.reduce_sum(legals * mu * (tf.math.log(mu) - tf.math.log(beta_probs + epsilon)), -1)  # (B,T,N)
    if temperature >= ONE_HOT_TEMPERATURE:
        weights = tf.one_hot(tf.argmax(kl, -1), kl.shape[-1])
    else:
        weights = tf.nn.softmax(temperature * kl)
    return tf.stop_gradient(weights)


def counterfactual_penalty(cf_q_tot, weights, q_tot):
    """CFCQL regulariser: mean_t [ sum_i lambda_i logsumexp_j Q_tot^(i,j) - Q_tot(t, a) ].

    cf_q_tot (B,T,N,A), weights (B,T,N), q_tot (B,T).
    """
    pushed_down = tf.reduce_sum(weights * tf.reduce_logsumexp(cf_q_tot, -1), -1)  # (B,T)
    return tf.reduce_mean(pushed_down - q_tot)


# ----------------------------------------------------------------------------- system
class CFCQLSystem(BaseOfflineSystem):
    """QMIX + counterfactual CQL, registered as `cfcql`."""

    Config = CFCQLConfig
    ACTING_NETWORK = "q"  # greedy: argmax of each agent's Q_i over legal actions

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = CFCQLConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        n, a = self.num_agents, self.num_actions
        obs_size = int(environment.observation_shape[-1])
        state_size = int(environment.state_shape[-1])
        self.q = QNetworks(cfg, n, a, obs_size, name="q")
        self.mixer = QMixer(n, cfg.mixer_embed_dim, cfg.hypernet_embed, name="mixer")
        self.target_mixer = QMixer(n, cfg.mixer_embed_dim, cfg.hypernet_embed, name="target_mixer")
        for mixer in (self.mixer, self.target_mixer):
            mixer(tf.zeros([1, n]), tf.zeros([1, state_size]))  # build
        polyak_update(self.target_mixer.variables, self.mixer.variables, 1.0)  # start as a copy
        self.uses_beta = cfg.softmax_temp > 0 and cfg.alpha > 0
        self.behaviour = Torso(cfg.torso, n, a, cfg.hidden_sizes, layout="shared",
                               add_agent_id=cfg.add_agent_id_to_obs, name="behaviour")
        self.behaviour.unroll(tf.zeros([1, 1, n, obs_size]))
        self.bc_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="bc_updates")
        self.optimizer = adam(cfg.learning_rate, self.variables_to_train)
        self.bc_optimizer = adam(cfg.bc_learning_rate, self.behaviour.trainable_variables)
        self._tf_bc_step = tf.function(self._bc_step, jit_compile=cfg.jit_compile, autograph=False)
        self._tf_train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile, autograph=False)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {"q": self.q, "mixer": self.mixer, "target_mixer": self.target_mixer,
                "behaviour": self.behaviour, "optimizer": self.optimizer,
                "bc_optimizer": self.bc_optimizer, "bc_updates": self.bc_updates}

    @property
    def variables_to_train(self):
        return list(self.q.trainable) + list(self.mixer.trainable_variables)

    def train_step(self, experience) -> Dict[str, tf.Tensor]:
        if self.uses_beta and int(self.bc_updates.numpy()) < self.config.bc_steps:
            return self._tf_bc_step(experience)
        return self._tf_train_step(experience)

    def _beta_probs(self, batch):
        return tf.nn.softmax(masked_logits(self.behaviour.unroll(batch.obs, batch.resets), batch.legals))

    def _bc_step(self, experience) -> Dict[str, tf.Tensor]:
        """beta_i by behaviour cloning: -mean log beta_i(a_i) (the repository's `train_behaviour`)."""
        batch = unpack(experience)
        variables = self.behaviour.trainable_variables
        with tf.GradientTape() as tape:
            log_beta = tf.math.log(self._beta_probs(batch) + 1e-10)
            loss = -tf.reduce_mean(taken(log_beta, batch.actions))
        apply_clipped(self.bc_optimizer, tape.gradient(loss, variables), variables, self.config.grad_clip)
        self.bc_updates.assign_add(1)
        return {"bc_loss": loss}

    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        cfg = self.config
        batch = unpack(experience)
        target_q = self.q.target_values(batch.obs, batch.resets)  # (B,T,N,A)
        state, legals = batch.state[:, :-1], batch.legals[:, :-1]  # (B,T-1,S), (B,T-1,N,A)
        with tf.GradientTape() as tape:
            q = self.q.values(batch.obs, batch.resets)  # (B,T,N,A)
            x = self.target_mixer(double_q_bootstrap(q, target_q, batch.legals), batch.state)  # (B,T)
            g = td_lambda_targets(batch.rewards, batch.dones, x, cfg.gamma, cfg.td_lambda)  # (B,T-1)
            q_taken = taken(q[:, :-1], batch.actions[:, :-1])  # (B,T-1,N)
            q_tot = self.mixer(q_taken, state)  # (B,T-1)
            loss_td = td_loss(q_tot, g)  # QMIX TD(lambda) loss
            cf_q_tot = counterfactual_q_tot(self.mixer, q[:, :-1], q_taken, state, legals)  # (B,T-1,N,A)
            if self.uses_beta:
                weights = agent_weights(cf_q_tot, self._beta_probs(batch)[:, :-1], legals,
                                        cfg.softmax_temp, cfg.kl_epsilon)  # (B,T-1,N)
            else:
                weights = tf.fill(tf.shape(q_taken), 1.0 / self.num_agents)
            penalty = counterfactual_penalty(cf_q_tot, weights, q_tot)  # CFCQL regulariser
            loss = loss_td + cfg.alpha * penalty
        variables = self.variables_to_train
        grad_norm = apply_clipped(self.optimizer, tape.gradient(loss, variables), variables, cfg.grad_clip)
        self.q.sync(self.target_mixer.variables, self.mixer.variables)
        return {"loss": loss, "td_loss": loss_td, "cql_loss": penalty, "grad_norm": grad_norm,
                "q_taken_mean": tf.reduce_mean(q_tot), "target_mean": tf.reduce_mean(g),
                "lambda_max_mean": tf.reduce_mean(tf.reduce_max(weights, -1))}
