"""InSPO: "Offline Multi-Agent Reinforcement Learning via In-Sample Sequential Policy
Optimization" (Liu, Lin, Yu, Wu, Liang, Li, Ding; AAAI 2025; arXiv 2412.07639).

Reference code: none public (authors' repo kkkaiaiai/InSPO says code coming soon), so
this follows the paper's main text and algorithms.md section 2. Each step:

  1. mu^i by behaviour cloning, first (Alg. 1 line 1): the first `bc_steps` calls of
     `train_step` train mu only; then the policy starts as a copy of mu.
  2. One local critic Q^i(s, a^i) per agent with a Polyak target, regularised target
     (Eq. 14 / Eq. 10), trained on an importance-resampled batch (Eq. 15).
  3. Agents are updated in a random permutation (Alg. 1 line 4); agent i_n's resampling
     ratio uses the *current* policies of its teammates, i.e. the new ones of i_1..i_{n-1}
     (Eq. 14), and its policy is fitted by weighted maximum likelihood (Eq. 13).

Departures from the paper (each a config field, marked `# ours:` below):
  - temperatures alpha, beta, network sizes, learning rates, step counts (Appendix B is
    not available); auto-alpha target KL, initial value, lr and clip;
  - the regularisers of the critic target sit inside the discount as Eq. 10 writes them
    (`discount_regularizers`), not outside as the practical line does;
  - exp weights clipped at `w_max`, ratios at `rho_max`, mu floored at `mu_floor`;
  - `inner_steps` critic steps, then as many actor steps, per agent turn, on one resampled
    D_rho for the turn or a fresh one per step (`resample`); optionally self-normalised
    Eq. 13 weights (`normalize_weights`: a batch constant, so the weighted-MLE minimiser is
    unchanged and only the step size is);
  - the "w/o SPO" ablation (`sequential=False`, Fig. 5b) updates every agent against the
    same teammates. Which teammates the paper's ablation resamples for is not written
    down; `simultaneous_ratio="old"` (default) resamples for their pre-step policies
    (Eq. 14 with no earlier agents): on XOR (b) both agents flip together between (A, A)
    and (B, B). `"behaviour"` holds them at mu, so SPO's resampling goes with it and each
    agent improves against the data alone: both settle on the OOD joint action (B, B).
    With small, noisy steps the "old" cycle can break and coordinate (measured with
    earlier XOR settings), so the ablation needs the near-full fits of the XOR config;
  - auto-alpha moves alpha up when KL(pi||mu) exceeds the target (the Lagrangian dual
    of KL <= target); the paper's one-line "min_alpha alpha*KL - alpha*target" would
    move it the other way;
  - GRU mode: the critic is an MLP on [state, obs_i, agent id]; policy and mu see the
    agent's observation history; the ratio is per time step (as AlberDICE).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Tuple, Union

import sonnet as snt
import tensorflow as tf

from og_marl_inspo.base import EVAL_MODES, BaseOfflineSystem
from og_marl_inspo.batch import unpack
from og_marl_inspo.config import check_fields
from og_marl_inspo.networks import (AgentSlicedAdam, Torso, agent_slice, agentwise_unroll,
                                    agentwise_variables, masked_logits)
from og_marl_inspo.td import hard_update, polyak_update

UPDATE_ORDERS = ("random", "fixed", "reversed")
CRITIC_INPUTS = ("auto", "state", "state_obs_id")
POLICY_INITS = ("copy_mu", "scratch")
RESAMPLE_MODES = ("per_step", "per_turn")
SIMULTANEOUS_RATIOS = ("old", "behaviour")


@dataclasses.dataclass
class InSPOConfig:
    alpha: Union[float, str] = 0.1   # Eq. 9 KL temperature, or "auto" (paper, Table 5)
    beta: float = 0.1                # Eq. 9 entropy temperature (XOR 0.1, M-NE 3: ours)
    beta_final: float = 0.0          # ours: beta after the anneal (when beta_anneal_steps > 0)
    beta_anneal_start: int = 0       # ours: InSPO steps at full beta before the anneal begins
    beta_anneal_steps: int = 0       # ours: length of a linear beta -> beta_final anneal; 0: constant
    entropy: bool = True             # False: beta forced to 0 (ablation "w/o entropy", Fig. 5a)
    sequential: bool = True          # False: simultaneous updates (ablation "w/o SPO", Fig. 5b)
    simultaneous_ratio: str = "old"  # ours, w/o SPO only: teammates in the resampling ratio are their
                                     # pre-step policies ("old", Eq. 14) or mu ("behaviour": ratio 1,
                                     # SPO's resampling goes too); see the module docstring
    update_order: str = "random"     # "random" per step (Alg. 1 line 4), "fixed" 0..N-1, "reversed"
    gamma: float = 0.99
    policy_lr: float = 1e-3          # ours: Adam, agent-sliced
    policy_adam_beta1: float = 0.9   # ours: policy Adam's momentum (XOR 0: no push left over from the
                                     # last turn, each turn fits its own D_rho)
    policy_adam_beta2: float = 0.999  # ours: policy Adam's second-moment decay (M-NE 0.9)
    critic_lr: float = 1e-3          # ours: Adam, agent-sliced
    critic_adam_beta1: float = 0.9   # ours: critic Adam's momentum (XOR 0, as for the policy)
    bc_lr: float = 1e-3              # ours: Adam on mu
    bc_steps: int = 2000             # ours: train_step calls spent on mu before InSPO starts
    policy_init: str = "copy_mu"     # ours: "copy_mu" (ratios start at 1) or "scratch"
    critic_pretrain: bool = True     # ours: critics evaluate pi_0 = mu during the BC steps
    torso: str = "mlp"               # "mlp" (matrix, grid games) or "gru" (SMAC) for pi and mu
    hidden_sizes: Tuple[int, ...] = (64, 64)         # pi and mu widths; GRU uses the first
    critic_hidden_sizes: Tuple[int, ...] = (64, 64)  # ours: critic MLP widths (SMAC 256, 256)
    critic_input: str = "auto"       # ours: "state", "state_obs_id"; auto: state (mlp), state_obs_id (gru)
    target_tau: float = 0.005        # ours: Polyak rate of the target critic
    discount_regularizers: bool = True  # ours: Eq. 10 (inside gamma); False: practical Eq. 14 line
    rho_max: float = 100.0           # ours: clip on the resampling ratio (AlberDICE's value)
    w_max: float = 100.0             # ours: clip on the Eq. 13 exp weight
    normalize_weights: bool = False  # ours: divide the Eq. 13 weights by their resampled mean (a batch
                                     # constant: the weighted-MLE minimiser is unchanged, the step size
                                     # no longer shrinks when every advantage is negative)
    mu_floor: float = 1e-6           # ours: floor on mu before logs and ratios
    inner_steps: int = 1             # ours: critic+actor steps per agent turn
    resample: str = "per_step"       # ours: "per_turn" draws one D_rho per agent turn for all its critic
                                     # and actor steps (Alg. 1's fit on one resampled dataset);
                                     # "per_step" draws afresh for every inner step
    target_kl_per_agent: float = 0.1  # ours: auto-alpha target, times N
    alpha_init: float = 10.0         # ours: auto-alpha start (best fixed value, Table 5)
    alpha_lr: float = 3e-4           # ours: Adam on log alpha; alpha clipped to [1e-3, 1e3]
    grad_clip: float = 10.0          # global-norm clip per agent turn
    eval_mode: str = "stochastic"    # "stochastic" (matrix, Bridge) or "greedy" (SMAC)
    jit_compile: bool = False        # XLA for the train step (worth it for GRU windows)

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        self.critic_hidden_sizes = tuple(self.critic_hidden_sizes)
        if isinstance(self.alpha, str) and self.alpha != "auto":
            try:  # run configs hold alpha as text so the CLI can switch it to "auto"
                self.alpha = float(self.alpha)
            except ValueError:
                pass
        number = isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool)
        beta_ok = isinstance(self.beta, (int, float)) and self.beta >= 0
        check_fields(self, [
            ("alpha", self.alpha == "auto" or (number and self.alpha >= 0),
             "must be >= 0 or 'auto'"),
            ("beta", beta_ok, "must be >= 0"),
            ("beta_final", self.beta_final >= 0, "must be >= 0"),
            ("beta_anneal_start", self.beta_anneal_start >= 0, "must be >= 0"),
            ("beta_anneal_steps", self.beta_anneal_steps >= 0, "must be >= 0"),
            ("alpha", not (number and beta_ok) or self.alpha + min(self.effective_beta, self.final_beta) > 0,
             "alpha + beta must be > 0 (the Eq. 13 weight divides by it)"),
            ("entropy", isinstance(self.entropy, bool), "must be true or false"),
            ("sequential", isinstance(self.sequential, bool), "must be true or false"),
            ("normalize_weights", isinstance(self.normalize_weights, bool), "must be true or false"),
            ("critic_pretrain", isinstance(self.critic_pretrain, bool), "must be true or false"),
            ("simultaneous_ratio", self.simultaneous_ratio in SIMULTANEOUS_RATIOS,
             f"choose one of {', '.join(SIMULTANEOUS_RATIOS)}"),
            ("update_order", self.update_order in UPDATE_ORDERS,
             f"choose one of {', '.join(UPDATE_ORDERS)}"),
            ("gamma", 0 <= self.gamma <= 1, "must be in [0, 1]"),
            ("policy_lr", self.policy_lr > 0, "must be > 0"),
            ("policy_adam_beta1", 0 <= self.policy_adam_beta1 < 1, "must be in [0, 1)"),
            ("policy_adam_beta2", 0 < self.policy_adam_beta2 < 1, "must be in (0, 1)"),
            ("critic_lr", self.critic_lr > 0, "must be > 0"),
            ("critic_adam_beta1", 0 <= self.critic_adam_beta1 < 1, "must be in [0, 1)"),
            ("bc_lr", self.bc_lr > 0, "must be > 0"),
            ("bc_steps", self.bc_steps >= 0, "must be >= 0"),
            ("policy_init", self.policy_init in POLICY_INITS, f"choose one of {', '.join(POLICY_INITS)}"),
            ("torso", self.torso in ("mlp", "gru"), "choose 'mlp' or 'gru'"),
            ("hidden_sizes", len(self.hidden_sizes) > 0 and min(self.hidden_sizes) > 0,
             "needs positive widths"),
            ("critic_hidden_sizes", len(self.critic_hidden_sizes) > 0 and min(self.critic_hidden_sizes) > 0,
             "needs positive widths"),
            ("critic_input", self.critic_input in CRITIC_INPUTS, f"choose one of {', '.join(CRITIC_INPUTS)}"),
            ("target_tau", 0 < self.target_tau <= 1, "must be in (0, 1]"),
            ("rho_max", self.rho_max >= 1, "must be >= 1"),
            ("w_max", self.w_max > 0, "must be > 0"),
            ("mu_floor", 0 < self.mu_floor < 1, "must be in (0, 1)"),
            ("inner_steps", self.inner_steps >= 1, "must be >= 1"),
            ("resample", self.resample in RESAMPLE_MODES, f"choose one of {', '.join(RESAMPLE_MODES)}"),
            ("target_kl_per_agent", self.target_kl_per_agent >= 0, "must be >= 0"),
            ("alpha_init", self.alpha_init > 0, "must be > 0"),
            ("alpha_lr", self.alpha_lr > 0, "must be > 0"),
            ("grad_clip", self.grad_clip > 0, "must be > 0"),
            ("eval_mode", self.eval_mode in EVAL_MODES, f"choose one of {', '.join(EVAL_MODES)}"),
        ])

    @property
    def effective_beta(self) -> float:
        return float(self.beta) if self.entropy else 0.0

    @property
    def final_beta(self) -> float:
        return float(self.beta_final) if self.entropy and self.beta_anneal_steps > 0 else self.effective_beta


# ----------------------------------------------------------------------------- losses
def soft_value_eq10(q_bar, logpi, logmu, alpha, beta):
    """InSPO Eq. 10, one agent's terms: V = E_pi[Q] - alpha KL(pi||mu) + beta H(pi).

    q_bar, logpi, logmu (..., A) -> (V, E_pi[Q], KL, H), each (...).
    """
    pi = tf.exp(logpi)
    expected_q = tf.reduce_sum(pi * q_bar, -1)
    kl = tf.reduce_sum(pi * (logpi - logmu), -1)
    entropy = -tf.reduce_sum(pi * logpi, -1)
    return expected_q - alpha * kl + beta * entropy, expected_q, kl, entropy


def critic_loss_eq15(q_taken, y, counts):
    """InSPO Eq. 15 (resampled TD): (1/M) sum_bt c(b,t) 1/2 (Q(s, a^i) - y)^2."""
    return tf.reduce_sum(counts * 0.5 * tf.square(q_taken - y)) / tf.reduce_sum(counts)


def actor_log_weight_eq13(adv, logmu_taken, alpha, beta):
    """InSPO Eq. 13 exponent: (A(s, a^i) - beta log mu^i(a^i|s)) / (alpha + beta)."""
    return (adv - beta * logmu_taken) / (alpha + beta)


def actor_loss_eq13(logpi_taken, weights, counts):
    """InSPO Eq. 13 (weighted MLE on D_rho): -(1/M) sum_bt c(b,t) w(b,t) log pi^i(a^i|s)."""
    return -tf.reduce_sum(counts * weights * logpi_taken) / tf.reduce_sum(counts)


def resample_counts(log_rho, seed):
    """Importance resampling (Schlegel et al. 2019; algorithms.md 2.4).

    M = B*(T-1) draws with replacement, p proportional to exp(log_rho (B,T-1)); returns
    how often each transition was drawn, (B,T-1), summing to M.
    """
    flat = tf.reshape(log_rho, [1, -1])
    size = flat.shape[1]
    draws = tf.random.stateless_categorical(flat, size, seed, dtype=tf.int32)[0]
    counts = tf.math.unsorted_segment_sum(tf.ones([size]), draws, size)
    return tf.reshape(counts, tf.shape(log_rho))


def turn_resamples(log_rho, seeds, resample):
    """D_rho of one agent turn (algorithms.md 2.4): seeds (2, 2K) -> (critic_draw, actor_draw),
    each mapping inner step k to resample counts (1,B,T-1). "per_turn" draws once, from the
    turn's first seed, for every critic and actor step; "per_step" draws afresh per step."""
    steps = seeds.shape[1] // 2
    if resample == "per_turn":
        counts = resample_counts(log_rho, seeds[:, 0])[None]  # one D_rho for the whole turn
        return (lambda k: counts), (lambda k: counts)
    return (lambda k: resample_counts(log_rho, tf.gather(seeds, k, axis=1))[None],
            lambda k: resample_counts(log_rho, tf.gather(seeds, steps + k, axis=1))[None])


# ----------------------------------------------------------------------------- system
class InSPOSystem(BaseOfflineSystem):
    """In-Sample Sequential Policy Optimization, registered as `inspo`."""

    Config = InSPOConfig

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = InSPOConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        n, a = self.num_agents, self.num_actions
        obs_size = int(environment.observation_shape[-1])
        state_size = int(environment.state_shape[-1])
        self.beta = cfg.effective_beta
        self.critic_input = cfg.critic_input if cfg.critic_input != "auto" else (
            "state" if cfg.torso == "mlp" else "state_obs_id")
        critic_in = state_size + (obs_size + n if self.critic_input == "state_obs_id" else 0)

        init_rng, self.rng = tf.random.Generator.from_seed(seed).split(2)  # all randomness from `seed`

        def torso(kind, sizes, name, inputs):  # agentwise: one parameter slice per agent
            net = Torso(kind, n, a, sizes, layout="agentwise", name=name)
            net.unroll(tf.zeros([1, 1, n, inputs]))  # build now: optimisers need the shapes
            for w in agentwise_variables(net)[0::2]:  # AgentwiseLinear's init, drawn from the seed
                w.assign(init_rng.truncated_normal(w.shape, stddev=1.0 / math.sqrt(w.shape[1])))
            return net

        self.mu = torso(cfg.torso, cfg.hidden_sizes, "mu", obs_size)
        self.policy = torso(cfg.torso, cfg.hidden_sizes, "policy", obs_size)
        self.critic = torso("mlp", cfg.critic_hidden_sizes, "critic", critic_in)
        self.target_critic = torso("mlp", cfg.critic_hidden_sizes, "target_critic", critic_in)
        self._policy_vars = agentwise_variables(self.policy)
        self._critic_vars = agentwise_variables(self.critic)
        self._target_vars = agentwise_variables(self.target_critic)
        hard_update(self._target_vars, self._critic_vars)
        self.bc_lr = tf.Variable(float(cfg.bc_lr), trainable=False, name="bc_lr")
        self.bc_optimizer = snt.optimizers.Adam(self.bc_lr)
        self.policy_optimizer = AgentSlicedAdam(self._policy_vars, cfg.policy_lr, beta1=cfg.policy_adam_beta1,
                                                beta2=cfg.policy_adam_beta2, clip_norm=cfg.grad_clip,
                                                name="policy_adam")
        self.critic_optimizer = AgentSlicedAdam(self._critic_vars, cfg.critic_lr, beta1=cfg.critic_adam_beta1,
                                                clip_norm=cfg.grad_clip,
                                                name="critic_adam")
        self.log_alpha = tf.Variable(math.log(cfg.alpha_init if cfg.alpha == "auto" else max(cfg.alpha, 1e-30)),
                                     trainable=False, name="log_alpha")
        self.alpha_optimizer = snt.optimizers.Adam(cfg.alpha_lr)
        self.bc_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="bc_updates")
        self.inspo_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="inspo_updates")
        self.policy_ready = tf.Variable(False, trainable=False, name="policy_ready")
        self.last_order = tf.Variable(tf.range(n), trainable=False, name="last_order")  # for tests, logs
        self._tf_bc_step = tf.function(self._bc_step, jit_compile=cfg.jit_compile, autograph=False)
        self._tf_train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile, autograph=False)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {"mu": self.mu, "policy": self.policy, "critic": self.critic,
                "target_critic": self.target_critic, "bc_optimizer": self.bc_optimizer,
                "policy_optimizer": self.policy_optimizer, "critic_optimizer": self.critic_optimizer,
                "log_alpha": self.log_alpha, "alpha_optimizer": self.alpha_optimizer,
                "rng": self.rng, "bc_updates": self.bc_updates, "inspo_updates": self.inspo_updates,
                "policy_ready": self.policy_ready}

    @property
    def alpha(self) -> tf.Tensor:
        if self.config.alpha == "auto":
            return tf.exp(self.log_alpha)
        return tf.constant(float(self.config.alpha))

    @property
    def ACTING_NETWORK(self) -> str:  # noqa: N802 - the base class reads this name
        """The network that acts (ours): mu during the BC steps, so that evaluations show
        the policy being trained (pi is untrained until it starts as mu's copy), then pi."""
        return "policy" if bool(self.policy_ready.numpy()) else "mu"

    def train_step(self, experience) -> Dict[str, tf.Tensor]:
        if int(self.bc_updates.numpy()) < self.config.bc_steps:
            return self._tf_bc_step(experience)
        if not bool(self.policy_ready.numpy()):
            if self.config.policy_init == "copy_mu":  # ours: ratios pi/mu start at 1
                for p, m in zip(self._policy_vars, agentwise_variables(self.mu)):
                    p.assign(m)
            self.policy_ready.assign(True)
        return self._tf_train_step(experience)

    # ------------------------------------------------------------------ helpers
    def _agent_major(self, batch):
        """Agent axis first, as `agentwise_unroll` wants: (N,B,T,...)."""
        b, t, n = batch.actions.shape
        obs = tf.transpose(batch.obs, [2, 0, 1, 3])  # (N,B,T,O)
        state = tf.broadcast_to(batch.state[None], [n, b, t, batch.state.shape[-1]])  # (N,B,T,S)
        if self.critic_input == "state":
            critic_in = state
        else:  # ours (GRU mode): [s, o^i, one-hot(i)]
            ids = tf.broadcast_to(tf.eye(n)[:, None, None], [n, b, t, n])
            critic_in = tf.concat([state, obs, ids], -1)  # (N,B,T,S+O+N)
        taken = tf.one_hot(tf.transpose(batch.actions, [2, 0, 1]), self.num_actions)  # (N,B,T,A)
        return obs, critic_in, taken, tf.transpose(batch.legals, [2, 0, 1, 3])  # legals (N,B,T,A)

    def _log_probs(self, params, obs, resets, legals):
        """Masked log-softmax over legal actions (algorithms.md 1.2), (K,B,T,A)."""
        logits = agentwise_unroll(self.config.torso, params, obs, resets)
        return tf.nn.log_softmax(masked_logits(logits, legals))

    def _current_beta(self):
        """Eq. 9 entropy temperature of this step: beta, or its linear anneal (ours)."""
        cfg = self.config
        if cfg.beta_anneal_steps == 0 or not cfg.entropy:
            return tf.constant(self.beta)
        done = tf.cast(self.inspo_updates - cfg.beta_anneal_start, tf.float32) / cfg.beta_anneal_steps
        return self.beta + (cfg.final_beta - self.beta) * tf.clip_by_value(done, 0.0, 1.0)

    def _order(self):
        n = self.num_agents
        if self.config.update_order == "random":  # Alg. 1 line 4: a fresh permutation
            return tf.argsort(self.rng.uniform([n]))
        if self.config.update_order == "fixed":
            return tf.range(n)
        return tf.range(n - 1, -1, -1)

    def _critic_targets(self, batch, critic_in, logpi_old, logmu, alpha, beta):
        """Critic targets y (N,B,T-1) under the old policies, and their KL and H (N,B,T)."""
        cfg = self.config
        q_bar = agentwise_unroll("mlp", self._target_vars, critic_in)  # (N,B,T,A)
        v_bar, e_q_bar, kl, entropy = soft_value_eq10(q_bar, logpi_old, logmu, alpha, beta)  # (N,B,T)
        reward, not_done = batch.rewards[None, :, :-1], 1.0 - batch.dones[None, :, :-1]  # (1,B,T-1)
        if cfg.discount_regularizers:  # InSPO Eq. 10: regularisers inside V(s')
            y = reward + cfg.gamma * not_done * v_bar[:, :, 1:]
        else:  # InSPO Eq. 14 as printed: regularisers outside the discount
            y = (reward + cfg.gamma * not_done * e_q_bar[:, :, 1:]
                 - alpha * kl[:, :, 1:] + beta * entropy[:, :, 1:])
        return y, kl, entropy

    def _update_target(self):
        polyak_update(self._target_vars, self._critic_vars, self.config.target_tau)

    # ----------------------------------------------------------------- BC phase
    def _bc_step(self, experience) -> Dict[str, tf.Tensor]:
        cfg, n = self.config, self.num_agents
        batch = unpack(experience)
        obs, critic_in, taken, legals = self._agent_major(batch)
        variables = agentwise_variables(self.mu)
        with tf.GradientTape() as tape:
            log_mu = self._log_probs(variables, obs, batch.resets, legals)  # (N,B,T,A)
            loss = -tf.reduce_mean(tf.reduce_sum(taken * log_mu, -1))  # Alg. 1 line 1: BC of mu
        # ours: the BC step size decays linearly to 0, so mu ends precise (beta * log mu amplifies errors)
        self.bc_lr.assign(cfg.bc_lr * (1.0 - tf.cast(self.bc_updates, tf.float32) / cfg.bc_steps))
        self.bc_optimizer.apply(tape.gradient(loss, variables), variables)
        self.bc_updates.assign_add(1)
        if not cfg.critic_pretrain:
            return {"bc_loss": loss}
        # ours: Alg. 1 line 3 for k = 1 while mu trains: evaluate pi_0 = mu (rho = 1, no resampling)
        logmu = tf.math.log(tf.maximum(tf.exp(log_mu), cfg.mu_floor))
        y, _, _ = self._critic_targets(batch, critic_in, logmu, logmu, self.alpha, self._current_beta())
        with tf.GradientTape() as tape:
            q = agentwise_unroll("mlp", self._critic_vars, critic_in)[:, :, :-1]  # (N,B,T-1,A)
            td = tf.reduce_sum(taken[:, :, :-1] * q, -1) - y
            critic_loss = tf.reduce_sum(tf.reduce_mean(0.5 * tf.square(td), [1, 2]))  # Eq. 15, rho = 1
        grads = tape.gradient(critic_loss, self._critic_vars)
        for i in range(n):  # each agent's slice of the gradient moves its own slice
            self.critic_optimizer.apply([g[i:i + 1] for g in grads], self._critic_vars, i)
        self._update_target()
        return {"bc_loss": loss, "critic_loss": critic_loss / n}

    def _critic_step(self, counts, i, x_i, a_i, y_i):
        """One step of agent i's critic slice on resample counts (1,B,T-1) -> [loss, mean Q(s, a^i)]."""
        params = agent_slice(self._critic_vars, i)
        with tf.GradientTape() as tape:
            tape.watch(params)
            q_taken = tf.reduce_sum(a_i * agentwise_unroll("mlp", params, x_i)[:, :, :-1], -1)  # (1,B,T-1)
            critic_loss = critic_loss_eq15(q_taken, y_i, counts)  # InSPO Eq. 15 (resampled TD)
        self.critic_optimizer.apply(tape.gradient(critic_loss, params), self._critic_vars, i)
        return [critic_loss, tf.reduce_mean(q_taken)]

    def _actor_step(self, counts, i, x_i, obs_i, legals_i, a_i, pi_old_i, logmu_i, resets, alpha, beta):
        """One step of agent i's policy slice on resample counts (1,B,T-1) -> [loss, weight mean,
        clip fraction]."""
        cfg = self.config
        q = agentwise_unroll("mlp", agent_slice(self._critic_vars, i), x_i)[:, :, :-1]  # (1,B,T-1,A)
        adv = tf.reduce_sum((a_i - pi_old_i) * q, -1)  # A_phi = Q(a^i) - E_pi_old Q, (1,B,T-1)
        log_w = actor_log_weight_eq13(adv, logmu_i, alpha, beta)  # InSPO Eq. 13 exponent
        weights = tf.exp(tf.minimum(log_w, math.log(cfg.w_max)))  # ours: w_max
        if cfg.normalize_weights:  # ours: self-normalised, mean 1 under the resample
            weights = weights * tf.reduce_sum(counts) / tf.reduce_sum(counts * weights)
        params = agent_slice(self._policy_vars, i)
        with tf.GradientTape() as tape:
            tape.watch(params)
            logpi = tf.reduce_sum(a_i * self._log_probs(params, obs_i, resets, legals_i)[:, :, :-1], -1)
            policy_loss = actor_loss_eq13(logpi, weights, counts)  # InSPO Eq. 13 (weighted MLE)
        self.policy_optimizer.apply(tape.gradient(policy_loss, params), self._policy_vars, i)
        total = tf.reduce_sum(counts)
        clipped = tf.cast(log_w > math.log(cfg.w_max), tf.float32)
        return [policy_loss, tf.reduce_sum(counts * weights) / total, tf.reduce_sum(counts * clipped) / total]

    def _repeat(self, step, outputs, draw, *inputs):
        """`inner_steps` calls of `step(draw(k), *inputs)`, k = 0, 1, ...; the mean of its
        `outputs` results. More than one runs in a `tf.while_loop` (traced once)."""
        steps = self.config.inner_steps
        if steps == 1:
            return step(draw(0), *inputs)

        def body(k, sums):
            return k + 1, [total + x for total, x in zip(sums, step(draw(k), *inputs))]

        _, sums = tf.while_loop(lambda k, _: k < steps, body, (tf.constant(0), [tf.zeros([])] * outputs))
        return [total / steps for total in sums]

    # --------------------------------------------------------------- InSPO step
    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        cfg, n = self.config, self.num_agents
        batch = unpack(experience)
        alpha, beta = self.alpha, self._current_beta()
        self.inspo_updates.assign_add(1)
        obs, critic_in, taken, legals = self._agent_major(batch)  # agent axis first
        resets = batch.resets  # (B,T)
        mu_probs = tf.exp(self._log_probs(agentwise_variables(self.mu), obs, resets, legals))
        logmu = tf.math.log(tf.maximum(mu_probs, cfg.mu_floor))  # ours: floor, (N,B,T,A)
        logpi_old = self._log_probs(self._policy_vars, obs, resets, legals)  # (N,B,T,A)
        y, kl, entropy = self._critic_targets(batch, critic_in, logpi_old, logmu, alpha, beta)
        taken = taken[:, :, :-1]  # one-hot dataset actions of the transitions, (N,B,T-1,A)
        logmu_taken = tf.reduce_sum(taken * logmu[:, :, :-1], -1)  # (N,B,T-1)
        log_ratio = tf.reduce_sum(taken * logpi_old[:, :, :-1], -1) - logmu_taken  # (N,B,T-1)
        if not cfg.sequential and cfg.simultaneous_ratio == "behaviour":  # teammates held at mu
            log_ratio = tf.zeros_like(log_ratio)

        order = self._order()
        self.last_order.assign(order)
        seeds = self.rng.uniform_full_int([2, 2 * n * cfg.inner_steps], tf.int32)  # XLA wants int32 seeds
        stats = {k: [] for k in ("critic_loss", "policy_loss", "ess", "weight", "weight_clip",
                                 "rho_clip", "q")}
        for turn in range(n):  # unrolled at trace time; the agent index is a tensor
            i = order[turn]
            own = tf.one_hot(i, n)[:, None, None]  # (N,1,1)
            x_i, obs_i, legals_i = (tf.gather(t, i[None]) for t in (critic_in, obs, legals))  # (1,B,T,.)
            a_i = tf.gather(taken, i[None])  # (1,B,T-1,A)
            pi_old_i = tf.exp(tf.gather(logpi_old, i[None]))[:, :, :-1]  # (1,B,T-1,A)
            y_i, logmu_i = tf.gather(y, i[None]), tf.gather(logmu_taken, i[None])  # (1,B,T-1)
            # InSPO Eq. 14 ratio: prod_{j != i} pi^j(a^j)/mu^j(a^j), teammates' current policies
            raw_log_rho = tf.reduce_sum(log_ratio * (1.0 - own), 0)  # (B,T-1)
            log_rho = tf.minimum(raw_log_rho, math.log(cfg.rho_max))  # ours: rho_max
            p = tf.nn.softmax(tf.reshape(log_rho, [-1]))
            stats["ess"].append(1.0 / tf.reduce_sum(tf.square(p)) / tf.cast(tf.size(p), tf.float32))
            stats["rho_clip"].append(tf.reduce_mean(tf.cast(raw_log_rho > log_rho, tf.float32)))
            # Alg. 1 per turn: fit Q^i for the current teammates, then improve pi^i against it (ours:
            # `inner_steps` steps of each, the critic's all first, on resamples drawn per `resample`)
            critic_draw, actor_draw = turn_resamples(
                log_rho, seeds[:, 2 * turn * cfg.inner_steps:2 * (turn + 1) * cfg.inner_steps], cfg.resample)
            critic_loss, q_mean = self._repeat(self._critic_step, 2, critic_draw, i, x_i, a_i, y_i)
            policy_loss, weight, weight_clip = self._repeat(
                self._actor_step, 3, actor_draw, i, x_i, obs_i, legals_i, a_i, pi_old_i, logmu_i, resets,
                alpha, beta)
            for key, value in zip(("critic_loss", "policy_loss", "weight", "weight_clip", "q"),
                                  (critic_loss, policy_loss, weight, weight_clip, q_mean)):
                stats[key].append(value)
            if cfg.sequential:  # later agents see pi_new^i (Eq. 14); "w/o SPO" keeps pi_old^i
                logpi = self._log_probs(agent_slice(self._policy_vars, i), obs_i, resets, legals_i)
                new_i = tf.reduce_sum(a_i * logpi[:, :, :-1], -1) - logmu_i  # (1,B,T-1)
                log_ratio = log_ratio + own * (new_i - log_ratio)  # (N,B,T-1)

        kl_joint = tf.reduce_mean(tf.reduce_sum(kl[:, :, :-1], 0))  # KL(pi||mu) of the joint policy
        if cfg.alpha == "auto":  # ours: dual step, alpha rises while KL exceeds N * target
            with tf.GradientTape() as tape:
                tape.watch(self.log_alpha)
                alpha_loss = tf.exp(self.log_alpha) * tf.stop_gradient(
                    cfg.target_kl_per_agent * n - kl_joint)
            self.alpha_optimizer.apply(tape.gradient(alpha_loss, [self.log_alpha]), [self.log_alpha])
            self.log_alpha.assign(tf.clip_by_value(self.log_alpha, math.log(1e-3), math.log(1e3)))
        self._update_target()

        mean = lambda key: tf.reduce_mean(tf.stack(stats[key]))  # noqa: E731
        return {"critic_loss": mean("critic_loss"), "policy_loss": mean("policy_loss"),
                "alpha": tf.convert_to_tensor(alpha), "beta": beta, "kl_joint": kl_joint,
                "entropy_mean": tf.reduce_mean(entropy[:, :, :-1]),
                "ess_min": tf.reduce_min(tf.stack(stats["ess"])), "ess_mean": mean("ess"),
                "weight_mean": mean("weight"), "weight_clip_frac": mean("weight_clip"),
                "rho_clip_frac": mean("rho_clip"), "q_mean": mean("q")}
