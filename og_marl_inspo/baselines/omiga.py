"""OMIGA: "Offline Multi-Agent Reinforcement Learning with Implicit Global-to-Local Value
Regularization" (Wang, Zhan, Jiang, Zhang, Xu, Zhan; NeurIPS 2023; arXiv 2307.11620).
Reference code: ZhengYinan-AIR/OMIGA (SMAC branch: `models/omiga_model.py`,
`framework/trainer_omiga.py`); algorithms.md 4.7.

A global behaviour-regularised objective becomes local, in-sample value regularisation
through the decomposition (OMIGA Eq. 8)

    Q_tot(s, a) = sum_i w_i(s) Q_i(o_i, a_i) + b(s),   V_tot(s) = sum_i w_i(s) V_i(o_i) + b(s),

with w >= 0 from a one-hidden-layer mixer on the state. Per step, on transitions:

  - Q and mixer (Eq. 12): (Q_tot(s, a) - r - gamma (1 - d) Vbar_tot(s'))^2, target V and mixer;
  - V_i (Eq. 11): exp(z_i) + wbar_i V_i / alpha with z_i = wbar_i (Qbar_i(a_i) - V_i) / alpha,
    computed with a stable shift m (their code), target Q and target mixer weights;
  - policy (Eq. 13): weighted MLE, weight exp(z_i).

Departures: on datasets without per-agent states the mixer reads the global state
(ours, forced by the data); z_i is clipped to [-10, 10] as in their code.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import sonnet as snt
import tensorflow as tf

from og_marl_inspo.base import EVAL_MODES, BaseOfflineSystem
from og_marl_inspo.batch import unpack
from og_marl_inspo.config import check_fields
from og_marl_inspo.networks import Torso, masked_logits
from og_marl_inspo.td import polyak_update


@dataclasses.dataclass
class OMIGAConfig:
    alpha: float = 10.0              # regularisation temperature (OMIGA SMAC code)
    gamma: float = 0.99
    learning_rate: float = 5e-4      # Adam for policy, V and Q+mixer (three optimisers)
    target_tau: float = 0.005        # Polyak rate of target Q, V and mixer
    grad_clip: float = 1.0           # OMIGA code
    z_clip: float = 10.0             # OMIGA code: z_i clipped to [-z_clip, z_clip]
    torso: str = "mlp"               # policy: "mlp" (their code) or "gru" (ours, for SMAC windows)
    hidden_sizes: Tuple[int, ...] = (256, 256)  # policy, Q and V MLP widths (OMIGA code)
    mixer_hidden: int = 64           # OMIGA code: one hidden layer on the state
    add_agent_id_to_obs: bool = True
    eval_mode: str = "greedy"        # their rollout takes the argmax; InSPO small-game tables sample
    jit_compile: bool = False

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        check_fields(self, [
            ("alpha", self.alpha > 0, "must be > 0"),
            ("gamma", 0 <= self.gamma <= 1, "must be in [0, 1]"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("target_tau", 0 < self.target_tau <= 1, "must be in (0, 1]"),
            ("grad_clip", self.grad_clip > 0, "must be > 0"),
            ("z_clip", self.z_clip > 0, "must be > 0"),
            ("torso", self.torso in ("mlp", "gru"), "choose 'mlp' or 'gru'"),
            ("hidden_sizes", len(self.hidden_sizes) > 0 and min(self.hidden_sizes) > 0,
             "needs positive widths"),
            ("mixer_hidden", self.mixer_hidden > 0, "must be > 0"),
            ("eval_mode", self.eval_mode in EVAL_MODES, f"choose one of {', '.join(EVAL_MODES)}"),
        ])


class OMIGAMixer(snt.Module):
    """w(s) = |Linear(ReLU(Linear_h(s)))| >= 0 of shape (..., N), b(s) = Linear(...) (OMIGA code)."""

    def __init__(self, num_agents: int, hidden: int, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self._hidden = snt.Linear(hidden, name="hidden")
        self._w = snt.Linear(num_agents, name="w")
        self._b = snt.Linear(1, name="b")

    def __call__(self, state: tf.Tensor):
        h = tf.nn.relu(self._hidden(state))
        return tf.abs(self._w(h)), self._b(h)[..., 0]


# ----------------------------------------------------------------------------- losses
def mix_eq8(values, w, b):
    """OMIGA Eq. 8 decomposition: sum_i w_i(s) x_i + b(s); values, w (...,N), b (...) -> (...)."""
    return tf.reduce_sum(w * values, -1) + b


def q_loss_eq12(q_tot, y):
    """OMIGA Eq. 12: mean (Q_tot(s, a) - y)^2, y = r + gamma (1 - d) Vbar_tot(s')."""
    return tf.reduce_mean(tf.square(q_tot - y))


def local_z(w_bar, q_bar_taken, v, alpha, z_clip):
    """OMIGA Eq. 11 exponent z_i = (wbar_i Qbar_i(o_i, a_i) - wbar_i V_i(o_i)) / alpha, clipped."""
    return tf.clip_by_value((w_bar * q_bar_taken - w_bar * v) / alpha, -z_clip, z_clip)


def v_loss_eq11(z, w_bar, v, alpha):
    """OMIGA Eq. 11: mean[exp(z - m) + exp(-m) wbar V / alpha], m = max(stop(max z), -1).

    The shift m only rescales the objective exp(z) + wbar V / alpha (their code), whose
    minimiser is V_i = (alpha / wbar_i) log E_D[exp(wbar_i Qbar_i / alpha)].
    """
    m = tf.maximum(tf.stop_gradient(tf.reduce_max(z)), -1.0)
    return tf.reduce_mean(tf.exp(z - m) + tf.exp(-m) * w_bar * v / alpha)


def policy_loss_eq13(z, log_pi_taken):
    """OMIGA Eq. 13: -mean[stop(exp(z_i)) log pi_i(a_i | o_i)]."""
    return -tf.reduce_mean(tf.stop_gradient(tf.exp(z)) * log_pi_taken)


# ----------------------------------------------------------------------------- system
class OMIGASystem(BaseOfflineSystem):
    """OMIGA, registered as `omiga`."""

    Config = OMIGAConfig

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = OMIGAConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        n, a = self.num_agents, self.num_actions
        obs_size = int(environment.observation_shape[-1])
        state_size = int(environment.state_shape[-1])
        tf.random.set_seed(seed)  # initialisers draw from the global seed

        def net(kind, out, name):
            torso = Torso(kind, n, out, cfg.hidden_sizes, layout="shared",
                          add_agent_id=cfg.add_agent_id_to_obs, name=name)
            torso.unroll(tf.zeros([1, 1, n, obs_size]))  # build now: targets copy the variables
            return torso

        def mixer(name):
            module = OMIGAMixer(n, cfg.mixer_hidden, name=name)
            module(tf.zeros([1, state_size]))
            return module

        self.policy = net(cfg.torso, a, "policy")
        self.q, self.target_q = net("mlp", a, "q"), net("mlp", a, "target_q")
        self.v, self.target_v = net("mlp", 1, "v"), net("mlp", 1, "target_v")
        self.mixer, self.target_mixer = mixer("mixer"), mixer("target_mixer")
        self._pairs = [(self.target_q, self.q), (self.target_v, self.v), (self.target_mixer, self.mixer)]
        for target, source in self._pairs:
            polyak_update(target.trainable_variables, source.trainable_variables, 1.0)
        self.policy_optimizer = snt.optimizers.Adam(cfg.learning_rate)
        self.v_optimizer = snt.optimizers.Adam(cfg.learning_rate)
        self.q_optimizer = snt.optimizers.Adam(cfg.learning_rate)
        self._tf_train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile, autograph=False)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {"policy": self.policy, "q": self.q, "target_q": self.target_q, "v": self.v,
                "target_v": self.target_v, "mixer": self.mixer, "target_mixer": self.target_mixer,
                "policy_optimizer": self.policy_optimizer, "v_optimizer": self.v_optimizer,
                "q_optimizer": self.q_optimizer}

    def q_tot(self, obs, actions, state, target: bool = False):
        """Q_tot(s, a) of OMIGA Eq. 8: obs (...,N,O), actions (...,N), state (...,S) -> (...)."""
        q_net, mixer = (self.target_q, self.target_mixer) if target else (self.q, self.mixer)
        q_taken = tf.reduce_sum(tf.one_hot(actions, self.num_actions) * q_net.step(obs, None)[0], -1)
        return mix_eq8(q_taken, *mixer(state))

    def _apply(self, optimizer, loss, tape, variables):
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), self.config.grad_clip)
        optimizer.apply(grads, variables)

    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        cfg = self.config
        batch = unpack(experience)
        obs, state = batch.obs[:, :-1], batch.state[:, :-1]  # (B,T-1,N,O), (B,T-1,S)
        taken = tf.one_hot(batch.actions[:, :-1], self.num_actions)  # (B,T-1,N,A)
        reward, not_done = batch.rewards[:, :-1], 1.0 - batch.dones[:, :-1]  # (B,T-1)

        # targets: Vbar_tot(s') for the Q loss; wbar(s), Qbar_i(a_i) for z
        w_next, b_next = self.target_mixer(batch.state[:, 1:])
        v_next = self.target_v.unroll(batch.obs[:, 1:])[..., 0]  # (B,T-1,N)
        y = tf.stop_gradient(reward + cfg.gamma * not_done * mix_eq8(v_next, w_next, b_next))
        w_bar, _ = self.target_mixer(state)  # (B,T-1,N)
        q_bar_taken = tf.reduce_sum(taken * self.target_q.unroll(obs), -1)  # (B,T-1,N)

        q_vars = self.q.trainable_variables + self.mixer.trainable_variables
        with tf.GradientTape() as tape:
            q_taken = tf.reduce_sum(taken * self.q.unroll(obs), -1)  # (B,T-1,N)
            q_tot = mix_eq8(q_taken, *self.mixer(state))
            q_loss = q_loss_eq12(q_tot, y)  # OMIGA Eq. 12
        self._apply(self.q_optimizer, q_loss, tape, q_vars)

        with tf.GradientTape() as tape:
            v = self.v.unroll(obs)[..., 0]  # (B,T-1,N)
            z = local_z(w_bar, q_bar_taken, v, cfg.alpha, cfg.z_clip)
            v_loss = v_loss_eq11(z, w_bar, v, cfg.alpha)  # OMIGA Eq. 11
        self._apply(self.v_optimizer, v_loss, tape, self.v.trainable_variables)

        with tf.GradientTape() as tape:
            logits = masked_logits(self.policy.unroll(batch.obs, batch.resets), batch.legals)[:, :-1]
            log_pi_taken = tf.reduce_sum(taken * tf.nn.log_softmax(logits), -1)  # (B,T-1,N)
            policy_loss = policy_loss_eq13(z, log_pi_taken)  # OMIGA Eq. 13
        self._apply(self.policy_optimizer, policy_loss, tape, self.policy.trainable_variables)

        for target, source in self._pairs:
            polyak_update(target.trainable_variables, source.trainable_variables, cfg.target_tau)
        return {"q_loss": q_loss, "v_loss": v_loss, "policy_loss": policy_loss,
                "q_tot_mean": tf.reduce_mean(q_tot), "v_mean": tf.reduce_mean(v),
                "weight_mean": tf.reduce_mean(tf.exp(z)), "w_mean": tf.reduce_mean(w_bar)}
