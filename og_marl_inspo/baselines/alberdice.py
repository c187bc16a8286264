"""AlberDICE: "AlberDICE: Addressing Out-Of-Distribution Joint Actions in Offline
Multi-Agent RL via Alternating Stationary Distribution Correction Estimation"
(Matsunaga, Lee, Yoon, Leonardos, Abbeel, Kim; NeurIPS 2023; arXiv 2311.02194).
Reference code: dematsunaga/alberdice, `pymarl-master/src/learners/alberdice_learner.py`
and `config/algs/alberdice.yaml`; algorithms.md 4.8.

Alternating best responses: each train call visits agents 0..N-1 in turn (the code's
fixed order) on one minibatch; agent i's turn holds its teammates' current policies
fixed (so agent i sees the new policies of 0..i-1) and updates only agent i's slices of
nu, e, pi and the autoregressive data policy (agentwise parameters, agent-sliced Adam):

  - teammate KL: kappa_i = E_{a_-i ~ pi_-i} sum_{j != i} log pi_j(a_j) / piD_AR(a_j | s, a_i, ..);
  - e_i = r - alpha kappa_i + gamma nu_i(s') - nu_i(s)                         (AlberDICE Eq. 9),
    where a terminal row's s' is the absorbing state (their `absorbing_state: True`);
  - ratio w_i = min(prod_{j != i} pi_j(a_j) / piD_AR(a_j | s, a_i, ..), 100) on the dataset's
    teammate actions; the batch is resampled proportionally to w_i (resample_counts);
  - nu loss (AlberDICE Eq. 10): alpha log E_resampled[mean(w) exp(e_i / alpha)]
    + (1 - gamma) E[nu_i(s)] + gradient penalty on interpolated states;
  - e network: regression to e_i on the resampled batch + a conservative term (their code);
  - policy, I-projection (AlberDICE Eq. 12): -E_pi_i[e(s, .)] + alpha KL(pi_i || piD_i).

The temperature anneals geometrically alpha_start -> alpha_end (their code). Departures
(config fields, `# ours:`): the absorbing state is [0, .., 0, 1] (state plus an indicator
bit) and each terminal transition of the batch brings one absorbing self-loop (reward 0,
ratio 1) into the nu loss, where their buffer pads episodes with absorbing rows (without
it nu is unbounded on one-step episodes); e(s, .) is one network with A outputs instead of
a net on [s, one-hot a];
a time-limit end (`Batch.timeouts`) leaves its transition out of every loss
(`time_limit_ends="drop"`): vaults record timeouts as terminals, and as an absorbing exit
with reward 0 a timeout would look as good as the goal to nu, which under alpha -> 0
bounds nu from below by that exit at every state where an episode timed out (their
pymarl buffer bootstraps through timeouts instead, which a vault cannot: it keeps no state
after one); the data policy is fitted once per call, before agent 0's turn, and every
turn reads its pre-update probabilities; the gradient penalty pairs each state with the state half a
batch away; the step counts of the anneal are train calls, not transitions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Tuple

import sonnet as snt
import tensorflow as tf

from og_marl_inspo.base import EVAL_MODES, BaseOfflineSystem
from og_marl_inspo.batch import unpack
from og_marl_inspo.config import check_fields
from og_marl_inspo.inspo import resample_counts
from og_marl_inspo.networks import (AgentSlicedAdam, Torso, agent_slice, agentwise_unroll,
                                    agentwise_variables, masked_logits)


TIME_LIMIT_ENDS = ("drop", "absorbing")


@dataclasses.dataclass
class AlberDICEConfig:
    alpha_start: float = 5.0         # alberdice.yaml: KL temperature at step 0
    alpha_end: float = 0.001         # alberdice.yaml: KL temperature at the end of the anneal
    alpha_anneal_steps: int = 5000   # ours: train calls of the anneal (their t_max counts transitions)
    gamma: float = 0.99
    policy_lr: float = 1e-4          # alberdice.yaml lr: policy, data policy, AR data policy
    nu_lr: float = 1e-4              # alberdice.yaml nu_lr: nu and e networks
    ratio_max: float = 100.0         # alberdice.yaml other_policy_ratio_max
    kl_samples: int = 16             # their code: samples of a_-i for the teammate KL
    grad_penalty: float = 0.1        # nu_grad_penalty_coeff (AlberDICE default config)
    cql_coeff: float = 0.1           # their e-network conservative term
    prob_floor: float = 1e-10        # their code: added to data-policy probabilities before logs
    torso: str = "mlp"               # policy and data policy: "mlp" (their code asserts MLP) or "gru"
    hidden_sizes: Tuple[int, ...] = (128, 128)  # rnn_hidden_dim, used as the MLP width
    grad_clip: float = 0.0           # their code clips nothing; > 0 clips each slice's gradient
    eval_mode: str = "stochastic"    # their configs: test_greedy False
    time_limit_ends: str = "drop"    # ours: "drop" leaves timeout transitions out of every loss
    #                                  (their pymarl buffer bootstraps through them; a vault keeps no
    #                                  state after a timeout); "absorbing" ends them like a terminal
    jit_compile: bool = False

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        check_fields(self, [
            ("alpha_start", self.alpha_start > 0, "must be > 0"),
            ("alpha_end", self.alpha_end > 0, "must be > 0"),
            ("alpha_anneal_steps", self.alpha_anneal_steps >= 0, "must be >= 0 (0: alpha_start throughout)"),
            ("gamma", 0 <= self.gamma <= 1, "must be in [0, 1]"),
            ("policy_lr", self.policy_lr > 0, "must be > 0"),
            ("nu_lr", self.nu_lr > 0, "must be > 0"),
            ("ratio_max", self.ratio_max >= 1, "must be >= 1"),
            ("kl_samples", self.kl_samples >= 1, "must be >= 1"),
            ("grad_penalty", self.grad_penalty >= 0, "must be >= 0"),
            ("cql_coeff", self.cql_coeff >= 0, "must be >= 0"),
            ("prob_floor", 0 < self.prob_floor < 1, "must be in (0, 1)"),
            ("torso", self.torso in ("mlp", "gru"), "choose 'mlp' or 'gru'"),
            ("hidden_sizes", len(self.hidden_sizes) > 0 and min(self.hidden_sizes) > 0,
             "needs positive widths"),
            ("grad_clip", self.grad_clip >= 0, "must be >= 0 (0: no clipping)"),
            ("eval_mode", self.eval_mode in EVAL_MODES, f"choose one of {', '.join(EVAL_MODES)}"),
            ("time_limit_ends", self.time_limit_ends in TIME_LIMIT_ENDS,
             f"choose one of {', '.join(TIME_LIMIT_ENDS)}"),
        ])


# ----------------------------------------------------------------------------- losses
def resampled_mean(x, counts):
    """Mean of x (B,T-1) over the resampled multiset of transitions (counts sum to M)."""
    return tf.reduce_sum(counts * x) / tf.reduce_sum(counts)


def nu_loss_eq10(e, log_ratio, present, counts, nu_initial, alpha, gamma):
    """AlberDICE Eq. 10 (their code): alpha logsumexp_resampled(log mean w + e/alpha - log M)
    + (1 - gamma) E[nu(s_0)], every state of the batch an initial state.

    e, log_ratio, present (1 for a real entry), counts: same shape (the transitions and
    their absorbing companions); nu_initial: mean nu over the batch's states. The
    gradient penalty is added by the caller."""
    log_mean_w = (tf.reduce_logsumexp(tf.where(present > 0, log_ratio, -math.inf))
                  - tf.math.log(tf.reduce_sum(present)))
    terms = log_mean_w + e / alpha - tf.math.log(tf.reduce_sum(counts))
    weighted = tf.where(counts > 0, terms + tf.math.log(tf.maximum(counts, 1.0)), -math.inf)
    return alpha * tf.reduce_logsumexp(weighted) + (1.0 - gamma) * nu_initial


def e_loss(e_all, taken, e_target, data_probs, legals, counts, cql_coeff):
    """Their e-network loss: (e(s, a_i) - e_i)^2 + c (logsumexp_a e(s, a) - E_piD e(s, .)),
    both on the resampled batch. e_all, taken, data_probs, legals (B,T-1,A)."""
    pred = tf.reduce_sum(taken * e_all, -1)
    conservative = tf.reduce_logsumexp(masked_logits(e_all, legals), -1) - tf.reduce_sum(data_probs * e_all, -1)
    return resampled_mean(tf.square(pred - e_target), counts) + cql_coeff * resampled_mean(conservative, counts)


def policy_loss_eq12(log_pi, e_all, log_data, counts, alpha):
    """AlberDICE Eq. 12 (I-projection): -E_pi[e(s, .)] + alpha KL(pi_i || piD_i), resampled."""
    pi = tf.exp(log_pi)
    kl = tf.reduce_sum(pi * (log_pi - log_data), -1)
    return resampled_mean(-tf.reduce_sum(pi * e_all, -1) + alpha * kl, counts)


# ----------------------------------------------------------------------------- system
class AlberDICESystem(BaseOfflineSystem):
    """AlberDICE, registered as `alberdice`."""

    Config = AlberDICEConfig

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = AlberDICEConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        n, a = self.num_agents, self.num_actions
        if n < 2:
            raise ValueError(f"alberdice needs at least 2 agents, the environment has {n}")
        obs_size = int(environment.observation_shape[-1])
        state_size = int(environment.state_shape[-1])
        init_rng, self.rng = tf.random.Generator.from_seed(seed).split(2)  # all randomness from `seed`

        def torso(kind, out, inputs, name):  # agentwise: one parameter slice per agent
            net = Torso(kind, n, out, cfg.hidden_sizes, layout="agentwise", name=name)
            net.unroll(tf.zeros([1, 1, n, inputs]))  # build now: optimisers need the shapes
            for w in agentwise_variables(net)[0::2]:
                w.assign(init_rng.truncated_normal(w.shape, stddev=1.0 / math.sqrt(w.shape[1])))
            return net

        ar_inputs = state_size + a + (n - 1) * a + (n - 1)  # [s, a_i, teammates' prefix, position]
        self.policy = torso(cfg.torso, a, obs_size, "policy")
        self.data_policy = torso(cfg.torso, a, obs_size, "data_policy")
        self.ar_data_policy = torso("mlp", a, ar_inputs, "ar_data_policy")
        self.nu = torso("mlp", 1, state_size + 1, "nu")  # [s, absorbing bit]
        self.e = torso("mlp", a, state_size, "e")  # ours: e(s, .) with A outputs
        self._vars = {name: agentwise_variables(getattr(self, name))
                      for name in ("policy", "ar_data_policy", "nu", "e")}
        clip = cfg.grad_clip or None
        self.optimizers = {
            "policy": AgentSlicedAdam(self._vars["policy"], cfg.policy_lr, clip_norm=clip, name="policy_adam"),
            "ar_data_policy": AgentSlicedAdam(self._vars["ar_data_policy"], cfg.policy_lr, clip_norm=clip,
                                              name="ar_adam"),
            "nu": AgentSlicedAdam(self._vars["nu"], cfg.nu_lr, clip_norm=clip, name="nu_adam"),
            "e": AgentSlicedAdam(self._vars["e"], cfg.nu_lr, clip_norm=clip, name="e_adam"),
        }
        self.data_optimizer = snt.optimizers.Adam(cfg.policy_lr)
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")
        self._tf_train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile, autograph=False)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        items = {"policy": self.policy, "data_policy": self.data_policy, "ar_data_policy": self.ar_data_policy,
                 "nu": self.nu, "e": self.e, "data_optimizer": self.data_optimizer, "rng": self.rng,
                 "updates": self.updates}
        items.update({f"{name}_optimizer": opt for name, opt in self.optimizers.items()})
        return items

    @property
    def alpha(self) -> tf.Tensor:
        """alpha_k = alpha_start (alpha_end / alpha_start)^(k / K), their geometric anneal."""
        cfg = self.config
        if cfg.alpha_anneal_steps == 0:
            return tf.constant(cfg.alpha_start)
        done = tf.minimum(tf.cast(self.updates, tf.float32) / cfg.alpha_anneal_steps, 1.0)
        return cfg.alpha_start * (cfg.alpha_end / cfg.alpha_start) ** done

    def update_agent(self, experience, agent: int) -> Dict[str, tf.Tensor]:
        """One agent's turn alone (eager), with the data policy left as it is."""
        prep = self._prepare(unpack(experience), fit_data_policy=False)
        seeds = self.rng.uniform_full_int([2, 2], tf.int32)
        log_pi = tf.split(self._log_pi(self._vars["policy"], prep), self.num_agents)
        return self._turn(prep, agent, self.alpha, seeds, log_pi)

    # ------------------------------------------------------------------ helpers
    def _log_probs(self, kind, params, x, legals, resets=None):
        """Masked log-softmax over legal actions (algorithms.md 1.2), (K,B,T,A)."""
        return tf.nn.log_softmax(masked_logits(agentwise_unroll(kind, params, x, resets), legals))

    def _apply(self, name, loss, tape, params, agent):
        self.optimizers[name].apply(tape.gradient(loss, params), self._vars[name], agent)

    def _prepare(self, batch, fit_data_policy: bool):
        """Agent-major tensors shared by every turn; fits the data policy when asked."""
        cfg = self.config
        obs = tf.transpose(batch.obs, [2, 0, 1, 3])  # (N,B,T,O)
        legals = tf.transpose(batch.legals, [2, 0, 1, 3])  # (N,B,T,A)
        taken = tf.one_hot(tf.transpose(batch.actions, [2, 0, 1]), self.num_actions)  # (N,B,T,A)
        data_vars = agentwise_variables(self.data_policy)
        with tf.GradientTape() as tape:
            log_data = self._log_probs(cfg.torso, data_vars, obs, legals, batch.resets)  # (N,B,T,A)
            data_loss = -tf.reduce_mean(tf.reduce_sum(taken * log_data, -1))  # BC of piD
        if fit_data_policy:
            self.data_optimizer.apply(tape.gradient(data_loss, data_vars), data_vars)
        data_probs = tf.stop_gradient(tf.exp(log_data))[:, :, :-1]  # (N,B,T-1,A)
        return {"obs": obs, "legals": legals, "taken": taken, "resets": batch.resets,
                "state": batch.state, "rewards": batch.rewards[:, :-1],
                "not_done": 1.0 - batch.dones[:, :-1], "timeouts": batch.timeouts[:, :-1],
                "data_probs": data_probs,
                "log_data": tf.math.log(data_probs + cfg.prob_floor), "data_loss": data_loss}

    def _log_pi(self, params, prep, agents=None):
        """log pi (K,B,T-1,A) at the steps the losses read (0..T-2), of every agent or of
        `agents` (with their parameter slices). An MLP is fed those steps alone, since the
        window's last step is only nu's next state; a GRU unrolls the whole window."""
        obs, legals = prep["obs"], prep["legals"]
        if agents is not None:
            obs, legals = tf.gather(obs, agents), tf.gather(legals, agents)
        if self.config.torso == "mlp":
            return self._log_probs("mlp", params, obs[:, :, :-1], legals[:, :, :-1])
        return self._log_probs("gru", params, obs, legals, prep["resets"])[:, :, :-1]

    def _ar_logits(self, params, prep, agent: int, others):
        """piD_AR logits of agent i's teammates, in index order: (N-1,B,T-1,A).

        Teammate k is predicted from x_k = [s, one-hot a_i, one-hot actions of teammates
        0..k-1 (zeros after), one-hot k]: teacher forcing on the dataset's actions. The
        first layer is W x_k = W_s s + W_a a_i + sum_{p<k} W_p a_p + W_k (W split by rows
        as x_k is), so the state's product is formed once per transition, not once per
        teammate; the sum is the same, only the order of its additions changes."""
        n, a = self.num_agents, self.num_actions
        w_in, b_in, *rest = params  # w_in (1, in, H)
        s_own = tf.concat([prep["state"][:, :-1], prep["taken"][agent, :, :-1]], -1)  # (B,T-1,S+A)
        batch_size, steps, width = s_own.shape
        w_s_own, w_mates, w_position = tf.split(w_in[0], [width, (n - 1) * a, n - 1])
        shared = tf.reshape(tf.matmul(tf.reshape(s_own, [-1, width]), w_s_own), [1, batch_size * steps, -1])
        mates = tf.reshape(tf.gather(prep["taken"][:, :, :-1], others), [n - 1, batch_size * steps, a])
        per_mate = tf.matmul(mates, tf.reshape(w_mates, [n - 1, a, -1]))  # W_p a_p, (N-1,B(T-1),H)
        before = tf.linalg.band_part(tf.ones([n - 1, n - 1]), -1, 0) - tf.eye(n - 1)  # [p < k]
        prefix = tf.tensordot(before, per_mate, 1)  # sum over p < k (TF's CPU cumsum is slow here)
        hidden = tf.nn.relu(shared + prefix + w_position[:, None] + b_in)  # (N-1,B(T-1),H)
        logits = agentwise_unroll("mlp", rest, hidden[None])  # the layers after the first
        return tf.reshape(logits, [n - 1, batch_size, steps, a])

    # ------------------------------------------------------------------ one turn
    def _turn(self, prep, agent: int, alpha, seeds, log_pi) -> Dict[str, tf.Tensor]:
        """Agent `agent`'s best response to its teammates' current policies (one minibatch);
        `log_pi`: each agent's current log pi, a list of (1,B,T-1,A)."""
        cfg, n, a = self.config, self.num_agents, self.num_actions
        others = [j for j in range(n) if j != agent]
        legals = prep["legals"][:, :, :-1]  # (N,B,T-1,A)
        mate_legals = tf.gather(legals, others)  # (N-1,B,T-1,A)
        mate_taken = tf.gather(prep["taken"][:, :, :-1], others)  # (N-1,B,T-1,A)
        batch_size, steps = prep["rewards"].shape

        # autoregressive data policy of the teammates given a_i: fit slice i, read it before the step
        ar_params = agent_slice(self._vars["ar_data_policy"], agent)
        with tf.GradientTape() as tape:
            tape.watch(ar_params)
            logits = self._ar_logits(ar_params, prep, agent, others)
            log_ar = tf.nn.log_softmax(masked_logits(logits, mate_legals))  # (N-1,B,T-1,A)
            ar_loss = -tf.reduce_mean(tf.reduce_sum(mate_taken * log_ar, -1))  # BC of piD_AR
        self._apply("ar_data_policy", ar_loss, tape, ar_params, agent)
        log_ar = tf.math.log(tf.exp(tf.stop_gradient(log_ar)) + cfg.prob_floor)

        # teammates' current policies (agents before i already moved this call)
        log_mates = tf.concat([log_pi[j] for j in others], 0)  # (N-1,B,T-1,A)
        flat = tf.reshape(log_mates, [-1, a])
        draws = tf.random.stateless_categorical(flat, cfg.kl_samples, seeds[:, 0], dtype=tf.int32)  # (K,S)
        log_gap = tf.reshape(log_mates - log_ar, [-1, a])
        kappa = tf.reduce_mean(tf.gather(log_gap, draws, batch_dims=1), -1)  # (K,)
        kappa = tf.reduce_sum(tf.reshape(kappa, [n - 1, batch_size, steps]), 0)  # teammate KL, (B,T-1)
        raw_log_w = tf.reduce_sum(tf.reduce_sum(mate_taken * (log_mates - log_ar), -1), 0)  # (B,T-1)
        log_w = tf.minimum(raw_log_w, math.log(cfg.ratio_max))  # their other_policy_ratio_max
        # resampling over the transitions (ratio w) and their absorbing companions (ratio 1, ours);
        # timeouts take no part when `time_limit_ends` is "drop" (ours)
        done = 1.0 - prep["not_done"]  # (B,T-1)
        keep = 1.0 - prep["timeouts"] if cfg.time_limit_ends == "drop" else tf.ones_like(done)
        present = tf.stack([keep, done * keep])  # (2,B,T-1)
        log_w_ext = tf.stack([log_w, tf.zeros_like(log_w)])
        counts_ext = resample_counts(tf.where(present > 0, log_w_ext, -math.inf),
                                     tf.reverse(seeds[:, 1], [0]))  # (2,B,T-1), sums to 2M
        counts = counts_ext[0]  # draws of real transitions, (B,T-1)

        # nu: AlberDICE Eq. 10 with the gradient penalty on interpolated states
        nu_params = agent_slice(self._vars["nu"], agent)
        state = prep["state"]  # (B,T,S)
        real = tf.concat([state, tf.zeros_like(state[..., :1])], -1)  # (B,T,S+1), bit 0
        absorbing = tf.one_hot([[state.shape[-1]]], state.shape[-1] + 1)  # (1,1,S+1)
        s_t = real[:, :-1]
        eps = tf.random.stateless_uniform([batch_size, steps, 1], seeds[:, 1])
        s_mix = eps * s_t + (1.0 - eps) * tf.roll(s_t, batch_size // 2, axis=0)  # ours: pairing
        with tf.GradientTape() as tape:
            tape.watch(nu_params)
            nu_all = agentwise_unroll("mlp", nu_params, real[None])[0, ..., 0]  # (B,T)
            nu_abs = agentwise_unroll("mlp", nu_params, absorbing[None])[0, 0, 0, 0]  # nu(absorbing)
            nu_next = prep["not_done"] * nu_all[:, 1:] + done * nu_abs  # (B,T-1)
            e = prep["rewards"] - alpha * kappa + cfg.gamma * nu_next - nu_all[:, :-1]  # Eq. 9, (B,T-1)
            e_ext = tf.stack([e, tf.broadcast_to((cfg.gamma - 1.0) * nu_abs, tf.shape(e))])  # self-loop
            nu_initial = ((tf.reduce_sum(keep * nu_all[:, :-1]) + tf.reduce_sum(done * keep) * nu_abs)
                          / tf.reduce_sum(present))  # every state an initial state (their code)
            nu_loss = nu_loss_eq10(e_ext, log_w_ext, present, counts_ext, nu_initial, alpha,
                                   cfg.gamma)  # AlberDICE Eq. 10
            if cfg.grad_penalty > 0:
                with tf.GradientTape() as inner:
                    inner.watch(s_mix)
                    nu_mix = agentwise_unroll("mlp", nu_params, s_mix[None])
                grad = inner.gradient(nu_mix, s_mix)
                penalty = tf.reduce_mean(tf.reduce_sum(tf.square(grad), -1))
                nu_loss = nu_loss + cfg.grad_penalty * penalty
        self._apply("nu", nu_loss, tape, nu_params, agent)
        e = tf.stop_gradient(e)

        # e network: regression to e_i plus the conservative term (their code)
        e_params = agent_slice(self._vars["e"], agent)
        with tf.GradientTape() as tape:
            tape.watch(e_params)
            e_all = agentwise_unroll("mlp", e_params, state[None, :, :-1])[0]  # (B,T-1,A)
            e_net_loss = e_loss(e_all, prep["taken"][agent, :, :-1], e, prep["data_probs"][agent],
                                legals[agent], counts, cfg.cql_coeff)
        self._apply("e", e_net_loss, tape, e_params, agent)
        e_all = tf.stop_gradient(e_all)

        # policy: AlberDICE Eq. 12 (I-projection onto the data policy)
        pi_params = agent_slice(self._vars["policy"], agent)
        with tf.GradientTape() as tape:
            tape.watch(pi_params)
            own = self._log_pi(pi_params, prep, [agent])[0]  # (B,T-1,A)
            policy_loss = policy_loss_eq12(own, e_all, prep["log_data"][agent], counts, alpha)
        self._apply("policy", policy_loss, tape, pi_params, agent)

        p = tf.nn.softmax(tf.reshape(log_w, [-1]))
        return {"nu_loss": nu_loss, "e_loss": e_net_loss, "policy_loss": policy_loss, "ar_loss": ar_loss,
                "teammate_kl": tf.reduce_mean(kappa), "e_mean": tf.reduce_mean(e),
                "ess": 1.0 / tf.reduce_sum(tf.square(p)) / tf.cast(tf.size(p), tf.float32)}

    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        alpha = self.alpha
        prep = self._prepare(unpack(experience), fit_data_policy=True)
        seeds = self.rng.uniform_full_int([2, 2 * self.num_agents], tf.int32)  # XLA wants int32 seeds
        log_pi = tf.split(self._log_pi(self._vars["policy"], prep), self.num_agents)  # (1,B,T-1,A) each
        turns = []
        for i in range(self.num_agents):  # fixed order 0..N-1 (their code)
            turns.append(self._turn(prep, i, alpha, seeds[:, 2 * i:2 * i + 2], log_pi))
            if i < self.num_agents - 1:  # agent i's new policy, for the turns after it
                log_pi[i] = self._log_pi(agent_slice(self._vars["policy"], i), prep, [i])
        self.updates.assign_add(1)
        logs = {key: tf.reduce_mean(tf.stack([t[key] for t in turns])) for key in turns[0]}
        logs.update({"data_policy_loss": prep["data_loss"], "alpha": alpha})
        return logs
