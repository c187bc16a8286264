"""CPA: "Cooperative Policy Agreement: Learning Diverse Policy for Offline MARL" (Zhou,
Zheng, Hu, Chen, Zheng, Song, Song, Liu; AAAI 2025).

Reference code: none public; this follows the paper's main text and algorithms.md
section 3. Two systems:

  - `cpa_ar` (CPAARSystem): autoregressive MAICQ (Eqs. 4-7). Agent i's policy and critic
    read [s, one-hot(i), a_<i]; training feeds the dataset's a_<i (teacher forcing), so
    the MAICQ losses of og_marl_inspo/baselines/maicq.py apply unchanged. Execution
    samples a_1 .. a_N in turn from the thresholded policy of Eq. 8 (`beta`), or takes
    the highest logit in turn (`eval_mode="greedy"`, the paper's deterministic mode).
  - `cpa_pa` (CPAPASystem): first `ar_steps` steps train the AR teacher above, then
    policy agreement (Eqs. 9-12): a state-conditional action pool, a joint-action
    encoder and per-agent decoders trained by vector quantisation on joint actions the
    frozen teacher samples, plus our agreement key (algorithms.md 3.3): every agent
    picks the pool entry argmax_j g_j(s) + Gumbel(Phi(k_j)) from a shared key k ~ N(0, I)
    and decodes its own part of that entry. Greedy mode takes argmax_j g_j(s).

Either system can start from a finished `cpa_ar` run (`teacher_checkpoint`): the AR
networks do not depend on beta, so one teacher per seed serves every bar of Figs. 3-4.

Both report the per-agent action marginals of the acting policy for the policy
average entropy (Eqs. 19-21): Eq. 20 by enumeration (or Monte Carlo) for AR, Eq. 21 by
Monte Carlo over keys for PA. Greedy PA also reports `teacher_agreement`: the fraction
of agent decisions, over the states its evaluation visits, equal to its AR teacher's
greedy joint action there (ours: it measures the distillation where it is used).

Departures and readings (each a config field, marked `# ours:` below): network layout
and sizes; Eq. 8's masked actions get weight 0 (`threshold_weighting`); Eq. 11 as the
standard straight-through code; the VQ commitment weight (`vq_beta`, not Eq. 8's beta);
the decoder also reads s (`decoder_uses_state`), and may be one MLP for every agent
(`decoder_layout`); the agents may decode their parts of one joint action of the teacher's
seen in distillation rather than each its own argmax (`joint_decoding`, see
`repertoire_decode`); the prior head and key (`key_mode`);
pool entries no batch row chose are pulled toward random encoded labels (`revive_weight`,
the dead-code restart of VQ practice: without it 8 entries fell into 2 on Permutation);
the teacher's samples are redrawn every step; MLP networks only (CPA is stated for
MMDPs: the policies read the global state); Eq. 5's values may be the team's Q_tot after
the later agents' greedy actions instead of agent i's own Q_i, or every agent may share the
team's advantage Q_tot(s, a) - Q_tot(s, greedy a) (`advantages`, see `continuation_values`
and `joint_advantages`: Q_i alone is not identified under teacher forcing); the AR policy
may start by BC (MAICQ's `bc_warmup_steps`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf

from og_marl_inspo.base import BaseOfflineSystem
from og_marl_inspo.baselines.maicq import MAICQConfig, apply_clipped, maicq_losses, maicq_rules
from og_marl_inspo.batch import unpack
from og_marl_inspo.config import check_fields, is_count
from og_marl_inspo.errors import ConfigError, TrainingError
from og_marl_inspo.networks import (MASK_VALUE, ARHead, QMixer, Torso, agentwise_unroll, agentwise_variables,
                                    masked_logits, sample_actions)
from og_marl_inspo.td import hard_update

THRESHOLD_WEIGHTINGS = ("exp", "renormalised")
ADVANTAGES = ("agent_q", "continuation", "joint")
KEY_MODES = ("gumbel_prior", "nearest")
DECODER_LAYOUTS = ("agentwise", "shared")
JOINT_DECODINGS = ("independent", "repertoire")
MAX_ENUMERATED_PREFIXES = 4096  # Eq. 20 is enumerated up to this many a_<i, else Monte Carlo


@dataclasses.dataclass
class CPAARConfig(MAICQConfig):
    """MAICQ's fields (the backbone, Eqs. 5-7) plus the diversity threshold of Eq. 8."""

    beta: float = 1.0                # Eq. 8 threshold in (0, 1]; 1 = deterministic (Table 1)
    threshold_weighting: str = "exp"  # ours: Eq. 8 read as 1[pi > beta] exp(pi); or "renormalised"
    entropy_samples: int = 1000      # Monte Carlo samples for Eq. 20 when enumeration is too large
    teacher_checkpoint: str = ""     # a cpa_ar run's checkpoint directory: start from its AR networks
    advantages: str = "agent_q"      # Eq. 5's values: Q_i(s, a_i, a_<i), or "continuation" (ours,
    #                                  Q_tot with the later agents' greedy actions; continuation_values),
    #                                  or "joint" (ours, Q_tot(s, a) - Q_tot(s, greedy a); joint_advantages)

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        check_fields(self, maicq_rules(self) + ar_rules(self))


def ar_rules(cfg) -> list:
    number = isinstance(cfg.beta, (int, float)) and not isinstance(cfg.beta, bool)
    return [
        ("torso", cfg.torso == "mlp", "CPA reads the global state: only 'mlp' is implemented"),
        ("beta", number and 0 < cfg.beta <= 1, "must be in (0, 1] (Eq. 8 threshold on a probability)"),
        ("threshold_weighting", cfg.threshold_weighting in THRESHOLD_WEIGHTINGS,
         f"choose one of {', '.join(THRESHOLD_WEIGHTINGS)}"),
        ("entropy_samples", cfg.entropy_samples >= 1, "must be >= 1"),
        ("advantages", cfg.advantages in ADVANTAGES, f"choose one of {', '.join(ADVANTAGES)}"),
    ]


@dataclasses.dataclass
class CPAPAConfig(CPAARConfig):
    """The AR teacher's fields, then policy agreement (Eqs. 9-12 and our key)."""

    ar_steps: int = 5000             # ours: train_step calls spent on the AR teacher first
    pool_size: int = 1               # c, entries of the action pool; 1 = deterministic (Table 1)
    code_dim: int = 16               # ours: d, size of a pool entry
    pool_hidden_sizes: Tuple[int, ...] = (128, 128)   # ours: AP(s) and prior head widths
    coder_hidden_sizes: Tuple[int, ...] = (64, 64)    # ours: encoder and decoder widths
    vq_beta: float = 0.25            # ours: Eq. 10 commitment weight (VQ-VAE's)
    pa_lr: float = 5e-4              # ours: Adam on pool, encoder, decoders, prior
    decoder_uses_state: bool = True  # ours: decoders read [e', s] (Eq. 12 writes e' only)
    key_mode: str = "gumbel_prior"   # ours (algorithms.md 3.3); "nearest": argmin_j |k - e_j(s)|
    revive_weight: float = 1.0       # ours: pull entries no row chose toward random encoded labels
    decoder_layout: str = "agentwise"  # Eq. 12's per-agent omega_{p_i}; "shared" (ours): one MLP
    #                                    over [e', s, one-hot(i)] for every agent, as the AR heads
    joint_decoding: str = "independent"  # each agent the argmax of its own decoder; "repertoire"
    #                                      (ours): its part of the most likely teacher joint action
    #                                      that distillation saw (`repertoire_decode`)
    repertoire_size: int = 4096      # ours: room for that set of joint actions

    def __post_init__(self) -> None:
        self.pool_hidden_sizes = tuple(self.pool_hidden_sizes)
        self.coder_hidden_sizes = tuple(self.coder_hidden_sizes)
        super().__post_init__()
        check_fields(self, [
            ("ar_steps", is_count(self.ar_steps), "must be an integer >= 0"),
            ("pool_size", is_count(self.pool_size, 1), "must be an integer >= 1"),
            ("code_dim", self.code_dim >= 1, "must be >= 1"),
            ("pool_hidden_sizes", len(self.pool_hidden_sizes) > 0 and min(self.pool_hidden_sizes) > 0,
             "needs positive widths"),
            ("coder_hidden_sizes", len(self.coder_hidden_sizes) > 0 and min(self.coder_hidden_sizes) > 0,
             "needs positive widths"),
            ("vq_beta", self.vq_beta >= 0, "must be >= 0"),
            ("pa_lr", self.pa_lr > 0, "must be > 0"),
            ("revive_weight", self.revive_weight >= 0, "must be >= 0"),
            ("key_mode", self.key_mode in KEY_MODES, f"choose one of {', '.join(KEY_MODES)}"),
            ("decoder_layout", self.decoder_layout in DECODER_LAYOUTS,
             f"choose one of {', '.join(DECODER_LAYOUTS)}"),
            ("joint_decoding", self.joint_decoding in JOINT_DECODINGS,
             f"choose one of {', '.join(JOINT_DECODINGS)}"),
            ("repertoire_size", is_count(self.repertoire_size, 1), "must be an integer >= 1"),
        ])


def teacher_checkpoint_template(results_dir) -> str:
    """`system.teacher_checkpoint` for runs under `results_dir`: the finished cpa_ar run of
    each run's own task and seed (its placeholders are filled per run)."""
    return str(Path(results_dir, "{source}", "{env}", "{scenario}", "{dataset}", "cpa_ar",
                    "seed_{seed}_checkpoints"))


def distillation_steps(env: str, scenario: str) -> int:
    """CPA-PA's policy-agreement steps in its config for this task (training_steps - ar_steps)."""
    from og_marl_inspo.config import default_config

    config = default_config("cpa_pa", env, scenario)
    return config.training_steps - config.system.ar_steps


# ------------------------------------------------------------------ Eq. 5's values (ours)
def joint_q_tot(critic: ARHead, mixer: QMixer, state: tf.Tensor, joint: tf.Tensor) -> tf.Tensor:
    """Q_tot(s, a) of the mixer over the critic's Q_i(s, a_i, a_<i) on the joint action
    `joint` (...,N) int; state (...,S) -> (...)."""
    q = critic(state, joint)  # (...,N,A)
    return mixer(tf.reduce_sum(tf.one_hot(joint, q.shape[-1]) * q, -1), state)


def greedy_completion(policy: ARHead, state: tf.Tensor, actions: tf.Tensor, legals: tf.Tensor,
                      fill: tf.Tensor) -> tf.Tensor:
    """`actions` (...,N) int with every slot j where `fill[..., j]` is 1 replaced, in turn
    j = 0..N-1, by the highest legal logit of pi_j(.|s, a_<j) given the slots before it.
    state (...,S), legals (...,N,A); `fill` (...,N) int, broadcast against actions."""
    n = actions.shape[-1]
    for j in range(n):  # sequential on purpose: agent j sees a_<j, some of them just filled
        logits = masked_logits(policy.agent(state, actions, j), legals[..., j, :])
        greedy = tf.argmax(logits, -1, output_type=tf.int32)
        change = fill[..., j] * (greedy - actions[..., j])
        actions = actions + change[..., None] * tf.one_hot(j, n, dtype=tf.int32)
    return actions


def joint_advantages(policy: ARHead, critic: ARHead, mixer: QMixer, state: tf.Tensor,
                     actions: tf.Tensor, legals: tf.Tensor) -> tf.Tensor:
    """Q_tot(s, a) - Q_tot(s, a*) for the dataset's joint action a and the policy's greedy
    joint action a* (Eq. 4's deterministic mode), the same for every agent: (...,N), no gradient.

    `advantages="joint"` (ours) uses these in Eq. 5 in place of w^i(s) Q_i(s, a_i, a_<i), with
    credit 1/N. Eq. 5 then weights every agent's log pi_i(a_i|s, a_<i) by one factor,
    exp(Q_tot(s, a)/alpha)/Z, so the AR policy fits the in-sample optimal joint policy
    mu(a|s) exp(Q_tot(s, a)/alpha)/Z(s) of Eq. 1 whole; Q_tot of a dataset joint action is what
    Eq. 7 fits, where Q_i alone is not identified (see `continuation_values`). a* need not be
    in the data; Q_tot(s, a*) only sets each state's level, so that the batch softmax ranks
    actions rather than states. It costs N sequential policy calls on the batch, not
    continuation's on N*A variants of it.

    state (...,S), actions (...,N) int, legals (...,N,A).
    """
    greedy = greedy_completion(policy, state, actions, legals, tf.ones([actions.shape[-1]], tf.int32))
    advantage = tf.stop_gradient(joint_q_tot(critic, mixer, state, actions)
                                 - joint_q_tot(critic, mixer, state, greedy))
    return tf.broadcast_to(advantage[..., None], tf.shape(actions))


def continuation_values(policy: ARHead, critic: ARHead, mixer: QMixer, state: tf.Tensor,
                        actions: tf.Tensor, legals: tf.Tensor) -> tf.Tensor:
    """Q_tot(s, a_<i, x, a_>i) for every agent i and action x, where a_<i are the dataset's
    actions and a_>i the policy's greedy continuation (each later agent j takes the highest
    legal logit of pi_j(.|s, a_<j) in turn): (...,N,A), no gradient.

    `advantages="continuation"` (ours) uses these in Eq. 5 in place of agent i's own
    Q_i(s, a_i, a_<i). Under teacher forcing the mixer fits the data just as well when a
    function of (s, a_i) moves from Q_i into a later agent's Q_j, which sees a_i, so Q_i
    alone does not identify the value of a_i. On Aloha the early agents' Q_i took on the
    collision cost of their later neighbours' random data actions, and the greedy policy
    waited while holding a packet in 157 of 200 agent-steps. Q_tot under a continuation
    is the same whichever agent carries the cost.

    The cost is N sequential policy calls (the first fills nothing) on N*A variants of every
    row: on Aloha (10 agents, 2 actions) a step takes about three times as long as with Q_i;
    on Sensor (15, 9) about 4 s on 2 CPU cores, too slow to use there (`joint` instead).

    state (...,S), actions (...,N) int, legals (...,N,A).
    """
    n, a = actions.shape[-1], legals.shape[-1]
    lead = tf.shape(actions)[:-1]
    variants = tf.broadcast_to(actions[..., None, None, :], tf.concat([lead, [n, a, n]], 0))
    own = tf.one_hot(tf.range(n), n, dtype=tf.int32)[:, None, :]  # (N,1,N): agent i's slot
    variants = variants * (1 - own) + own * tf.range(a, dtype=tf.int32)[:, None]  # (...,i,x,N)
    states = tf.broadcast_to(state[..., None, None, :], tf.concat([lead, [n, a, state.shape[-1]]], 0))
    later = tf.constant(np.triu(np.ones((n, n), np.int32), 1)[:, None, :])  # (N,1,N): 1 where j > i
    variants = greedy_completion(policy, states, variants, legals[..., None, None, :, :], later)
    return tf.stop_gradient(joint_q_tot(critic, mixer, states, variants))


# --------------------------------------------------------------------- Eq. 8 and Eq. 20
def threshold_policy_eq8(probs: tf.Tensor, beta: float, weighting: str = "exp") -> tf.Tensor:
    """CPA Eq. 8, our reading (algorithms.md 3.1): pi^beta(a) ~ 1[pi(a) > beta] exp(pi(a));
    one-hot on argmax pi when no action passes. probs (...,A) -> (...,A)."""
    keep = tf.cast(probs > beta, probs.dtype)
    mass = keep * (tf.exp(probs) if weighting == "exp" else probs)  # ours: threshold_weighting
    total = tf.reduce_sum(mass, -1, keepdims=True)
    argmax = tf.one_hot(tf.argmax(probs, -1), probs.shape[-1], dtype=probs.dtype)
    return tf.where(total > 0, mass / tf.maximum(total, 1e-30), argmax)


def ar_marginals_eq20(step_probs: Callable[[int, np.ndarray, np.ndarray], np.ndarray], rows: int,
                      num_agents: int, num_actions: int, rng: np.random.Generator,
                      samples: int = 1000) -> np.ndarray:
    """CPA Eq. 20: P(a_i|s) = sum_{a_<i} prod_{j<=i} pi_j(a_j|s, a_<j), for `rows` states.

    `step_probs(i, row_index (M,), actions (M,N))` gives agent i's action distribution
    (M,A) in state `row_index` after the earlier agents' `actions[:, :i]`. Enumerated
    exactly when A^(N-1) <= MAX_ENUMERATED_PREFIXES, else estimated from `samples`
    sequential samples per state. Returns (rows, N, A).
    """
    n, a = num_agents, num_actions
    marginals = np.zeros((rows, n, a))
    if a ** (n - 1) <= MAX_ENUMERATED_PREFIXES:
        prefixes = np.zeros((rows, 1, n), np.int64)  # every a_<i of each state, (rows,K,N)
        weights = np.ones((rows, 1))  # their probabilities, (rows,K)
        for i in range(n):
            k = prefixes.shape[1]
            probs = step_probs(i, np.repeat(np.arange(rows), k), prefixes.reshape(rows * k, n))
            joint = weights[..., None] * probs.reshape(rows, k, a)  # (rows,K,A)
            marginals[:, i] = joint.sum(1)
            if i + 1 < n:
                prefixes = np.repeat(prefixes, a, axis=1)
                prefixes[:, :, i] = np.tile(np.arange(a), k)
                weights = joint.reshape(rows, k * a)
        return marginals
    index = np.repeat(np.arange(rows), samples)
    actions = np.zeros((rows * samples, n), np.int64)
    for i in range(n):
        probs = step_probs(i, index, actions)
        actions[:, i] = sample_actions(np.where(probs > 0, np.log(np.maximum(probs, 1e-30)), MASK_VALUE), rng)
        marginals[:, i] = np.eye(a)[actions[:, i]].reshape(rows, samples, a).mean(1)
    return marginals


def _state_input(obs: np.ndarray, state: Optional[np.ndarray]) -> tf.Tensor:
    if state is None:
        raise ValueError("CPA agents act on the global state s (the paper's MMDP); "
                         f"none was given with observations of shape {obs.shape}")
    return tf.convert_to_tensor(state, tf.float32)


# ------------------------------------------------------------------------------ CPA-AR
class CPAARSystem(BaseOfflineSystem):
    """Autoregressive MAICQ (CPA Eqs. 4-8), registered as `cpa_ar`."""

    Config = CPAARConfig

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = self.Config(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        n, a = self.num_agents, self.num_actions
        self.state_size = int(environment.state_shape[-1])
        # ours: shared MLPs over [s, one-hot(i), one-hot(a_<i)] (algorithms.md 3.1)
        self.policy = ARHead(n, a, a, cfg.hidden_sizes, name="ar_policy")  # Eq. 4 factors
        self.critic = ARHead(n, a, a, cfg.hidden_sizes, name="ar_critic")  # Q_i(s, ., a_<i)
        self.target_critic = ARHead(n, a, a, cfg.hidden_sizes, name="target_ar_critic")
        self.mixer = QMixer(n, cfg.mixer_embed_dim, cfg.hypernet_embed_dim, name="mixer")
        self.target_mixer = QMixer(n, cfg.mixer_embed_dim, cfg.hypernet_embed_dim, name="target_mixer")
        state, actions = tf.zeros([1, 2, self.state_size]), tf.zeros([1, 2, n], tf.int32)
        for net in (self.policy, self.critic, self.target_critic):  # build now
            net(state, actions)
        for mixer in (self.mixer, self.target_mixer):
            mixer(tf.zeros([1, 2, n]), state)
        self._sync_targets()
        self.optimizer = snt.optimizers.Adam(cfg.learning_rate)
        self.ar_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ar_updates")
        self._tf_ar_step = tf.function(self._ar_step, jit_compile=cfg.jit_compile)
        self.last_marginals = None
        if cfg.teacher_checkpoint:
            self.load_teacher(cfg.teacher_checkpoint)

    def load_teacher(self, directory: str) -> None:
        """Take the AR networks, optimiser and update count from a finished `cpa_ar` run's
        checkpoint directory. Its training does not depend on beta (Eq. 8 acts only at
        execution), so one run serves every beta: evaluated with 0 training steps, or as
        CPA-PA's teacher, whose train_steps then all distil once ar_updates >= ar_steps."""
        latest = tf.train.latest_checkpoint(directory)
        if latest is None:
            raise ConfigError(f"config field system.teacher_checkpoint: no checkpoint in {directory!r}")
        teacher = tf.train.Checkpoint(**CPAARSystem.checkpoint_items(self))
        try:
            teacher.restore(latest).assert_existing_objects_matched().expect_partial()
        except (AssertionError, ValueError) as err:
            raise ConfigError(f"config field system.teacher_checkpoint: {latest} is not a cpa_ar "
                              f"teacher of this config ({str(err).splitlines()[0]})") from None

    def _sync_targets(self) -> None:
        hard_update(self.target_critic.variables + self.target_mixer.variables,
                    self.critic.variables + self.mixer.variables)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {"ar_policy": self.policy, "ar_critic": self.critic, "target_ar_critic": self.target_critic,
                "mixer": self.mixer, "target_mixer": self.target_mixer, "ar_optimizer": self.optimizer,
                "ar_updates": self.ar_updates}

    def initial_state(self, num_episodes: int):
        return None  # MLP heads over the state: nothing recurrent to carry

    def train_step(self, experience) -> Dict[str, tf.Tensor]:
        return self._teacher_step(experience)

    def _teacher_step(self, experience) -> Dict[str, tf.Tensor]:
        logs = self._tf_ar_step(experience)
        if int(self.ar_updates.numpy()) % self.config.target_update_period == 0:
            self._sync_targets()  # hard target update (OG-MARL's MAICQ)
        return logs

    def _ar_step(self, experience) -> Dict[str, tf.Tensor]:
        """CPA Eqs. 5-7: MAICQ's losses with pi_i(.|s, a_<i) and Q_i(s, ., a_<i), teacher-forced."""
        batch = unpack(experience)
        variables = self.policy.trainable_variables + self.critic.trainable_variables + \
            self.mixer.trainable_variables
        target_q = self.target_critic(batch.state, batch.actions)  # (B,T,N,A), a' = dataset next actions
        values = advantages = None
        inputs = (self.policy, self.critic, self.mixer, batch.state[:, :-1], batch.actions[:, :-1],
                  batch.legals[:, :-1])  # ours; the last row of a window has no policy loss
        if self.config.advantages == "continuation":
            values = continuation_values(*inputs)
        elif self.config.advantages == "joint":
            advantages = joint_advantages(*inputs)
        with tf.GradientTape() as tape:
            logits = self.policy(batch.state, batch.actions)  # (B,T,N,A)
            q = self.critic(batch.state, batch.actions)  # (B,T,N,A)
            loss, logs = maicq_losses(batch, logits, q, target_q, self.mixer, self.target_mixer,
                                      self.config, values, advantages,  # CPA Eq. 5 and Eq. 7
                                      bc_only=self.ar_updates < self.config.bc_warmup_steps)
        apply_clipped(self.optimizer, tape, loss, variables, self.config.grad_clip)
        self.ar_updates.assign_add(1)
        return logs

    # ----------------------------------------------------------------- execution
    def _agent_probs(self, i: int, state: tf.Tensor, actions, legals: tf.Tensor) -> tf.Tensor:
        """pi_i(.|s, a_<i) over legal actions, (M,A)."""
        logits = self.policy.agent(state, tf.convert_to_tensor(actions, tf.int32), i)
        return tf.nn.softmax(masked_logits(logits, legals))

    def _thresholded(self, i, state, actions, legals) -> np.ndarray:
        probs = self._agent_probs(i, state, actions, legals)
        return threshold_policy_eq8(probs, self.config.beta, self.config.threshold_weighting).numpy()

    def act(self, obs, legals, rng, state=None) -> np.ndarray:
        """Eq. 4 in turn: a_i ~ pi_i^beta(.|s, a_<i) (Eq. 8), or the highest logit (greedy)."""
        s = _state_input(obs, state)
        legals = tf.convert_to_tensor(legals, tf.float32)
        rows, n, a = int(s.shape[0]), self.num_agents, self.num_actions
        if self.eval_mode == "greedy":
            actions = self.greedy_joint_action(s, legals)
        else:
            actions = np.zeros((rows, n), np.int64)
            for i in range(n):  # sequential on purpose: agent i sees a_<i
                probs = self._thresholded(i, s, actions, legals[:, i])
                actions[:, i] = sample_actions(np.where(probs > 0, np.log(np.maximum(probs, 1e-30)),
                                                        MASK_VALUE), rng)
        if self.eval_mode == "greedy" or self.config.beta >= 1.0:
            self.last_marginals = np.eye(a)[actions]  # deterministic: one joint action per state
        else:
            self.last_marginals = ar_marginals_eq20(
                lambda i, index, prefix: self._thresholded(i, tf.gather(s, index), prefix,
                                                           tf.gather(legals[:, i], index)),
                rows, n, a, rng, self.config.entropy_samples)
        return actions.astype(np.int32)

    def greedy_joint_action(self, state: tf.Tensor, legals: tf.Tensor) -> np.ndarray:
        """The deterministic mode of Eq. 4: a_i = argmax pi_i(.|s, a_<i) in turn, (M,N)."""
        actions = np.zeros((int(state.shape[0]), self.num_agents), np.int64)
        for i in range(self.num_agents):  # sequential on purpose: agent i sees a_<i
            actions[:, i] = self._agent_probs(i, state, actions, legals[:, i]).numpy().argmax(-1)
        return actions

    def joint_policy(self, state: np.ndarray, legals: Optional[np.ndarray] = None) -> np.ndarray:
        """pi^beta(a_1..a_N|s) of Eq. 4 for every joint action, (rows,) + (A,)*N (small games)."""
        rows, n, a = state.shape[0], self.num_agents, self.num_actions
        s = tf.convert_to_tensor(state, tf.float32)
        legals = tf.ones([rows, n, a]) if legals is None else tf.convert_to_tensor(legals, tf.float32)
        joint = np.ones((rows, 1))
        prefixes = np.zeros((rows, 1, n), np.int64)
        for i in range(n):
            k = prefixes.shape[1]
            index = np.repeat(np.arange(rows), k)
            probs = self._thresholded(i, tf.gather(s, index), prefixes.reshape(rows * k, n),
                                      tf.gather(legals[:, i], index)).reshape(rows, k, a)
            joint = (joint.reshape(rows, k)[..., None] * probs).reshape(rows, k * a)
            prefixes = np.repeat(prefixes, a, axis=1)
            prefixes[:, :, i] = np.tile(np.arange(a), k)
        return joint.reshape((rows,) + (a,) * n)


# ------------------------------------------------------------------------------ CPA-PA
def gumbel_from_key(key: tf.Tensor) -> tf.Tensor:
    """A standard-normal key coordinate -> a standard Gumbel: -log(-log Phi(k)) (ours, 3.3)."""
    phi = 0.5 * (1.0 + tf.math.erf(key / math.sqrt(2.0)))
    phi = tf.clip_by_value(phi, 1e-7, 1.0 - 1e-7)
    return -tf.math.log(-tf.math.log(phi))


def vq_loss_eq10(z_e, e, vq_beta):
    """CPA Eq. 10: |sg[z_e(a)] - e|^2 + beta_vq |sg[e] - z_e(a)|^2, mean over the batch."""
    return (tf.reduce_mean(tf.reduce_sum(tf.square(tf.stop_gradient(z_e) - e), -1))
            + vq_beta * tf.reduce_mean(tf.reduce_sum(tf.square(tf.stop_gradient(e) - z_e), -1)))


def revival_loss(pool, z_e, counts, row_pick):
    """Ours, against pool collapse (a VQ codebook's dead entries): every entry j that no row
    of the batch chose is pulled toward sg[z_e] of one random row r_j, at that row's state,
    so it becomes the nearest entry for some teacher action and starts to be trained.
    pool (M,c,d), z_e (M,d), counts (c,) rows per entry (Eq. 9), row_pick (c,) rows -> scalar."""
    c = pool.shape[1]
    dead = tf.cast(counts == 0, z_e.dtype)
    entries = tf.gather_nd(pool, tf.stack([row_pick, tf.range(c)], -1))  # e_j(s_{r_j}), (c,d)
    gap = tf.reduce_sum(tf.square(entries - tf.stop_gradient(tf.gather(z_e, row_pick))), -1)  # (c,)
    return tf.reduce_sum(dead * gap) / tf.maximum(tf.reduce_sum(dead), 1.0)


def straight_through_eq11(z_e, e):
    """CPA Eq. 11, our reading: e' = z_e + sg[e - z_e] (value e, gradient to the encoder)."""
    return z_e + tf.stop_gradient(e - z_e)


def reconstruction_loss_eq12(decoder_log_probs, joint_action):
    """CPA Eq. 12: -sum_i log p_i(a_i | e'), (M,N,A) and (M,N) -> mean over M."""
    taken = tf.one_hot(joint_action, decoder_log_probs.shape[-1])
    return -tf.reduce_mean(tf.reduce_sum(taken * decoder_log_probs, [-2, -1]))


def repertoire_decode(log_p, legals, repertoire):
    """Ours (`joint_decoding="repertoire"`): the joint action r of `repertoire` (K,N), among
    those legal for every agent, with the largest sum_i log p_i(r_i | e'[, s]); where none is
    legal, each agent's own argmax. log_p (...,N,A), legals broadcastable to it -> (...,N) int.

    The repertoire holds the distinct joint actions the frozen teacher produced during
    distillation. Every agent computes this argmax from the same (s, k) and the same
    networks, so the parts the agents take always form one joint action the teacher
    produced. Eq. 12's independent argmax agrees with it where the decoders are sure of
    the teacher's joint action, i.e. on states like the data's; elsewhere the agents'
    separate argmaxes can combine into a joint action the teacher never takes (on Aloha,
    neighbours transmitting together).
    """
    onehot = tf.one_hot(repertoire, log_p.shape[-1])  # (K,N,A)
    scores = tf.einsum("...na,kna->...k", log_p, onehot)
    legals = tf.broadcast_to(legals, tf.shape(log_p))
    legal = tf.reduce_all(tf.einsum("...na,kna->...kn", legals, onehot) > 0, -1)  # (...,K)
    best = tf.gather(repertoire, tf.argmax(tf.where(legal, scores, MASK_VALUE), -1, output_type=tf.int32))
    own = tf.argmax(masked_logits(log_p, legals), -1, output_type=tf.int32)
    return tf.where(tf.reduce_any(legal, -1)[..., None], best, own)


class CPAPASystem(CPAARSystem):
    """Policy agreement (CPA Eqs. 9-12 and our agreement key), registered as `cpa_pa`."""

    Config = CPAPAConfig
    TEACHER = "cpa_ar"  # its first ar_steps train exactly a cpa_ar run's networks

    @staticmethod
    def from_teacher(results_dir, env: str, scenario: str) -> Tuple[list, int]:
        """(overrides, train_steps) of a run that distils the finished cpa_ar run of its own
        task and seed under `results_dir` (the teacher it would otherwise train itself, from
        the same config, seed and batches): only the agreement steps are spent."""
        return ([f"system.teacher_checkpoint={teacher_checkpoint_template(results_dir)}"],
                distillation_steps(env, scenario))

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        super().__init__(environment, logger, seed=seed, **kwargs)
        cfg, n, a = self.config, self.num_agents, self.num_actions
        c, d = cfg.pool_size, cfg.code_dim
        self.pool = snt.nets.MLP(list(cfg.pool_hidden_sizes) + [c * d], name="action_pool")  # AP(s)
        self.prior = snt.nets.MLP(list(cfg.pool_hidden_sizes) + [c], name="pool_prior")  # g(s), ours
        self.encoder = snt.nets.MLP(list(cfg.coder_hidden_sizes) + [d], name="joint_encoder")  # z_e
        self.decoder = Torso("mlp", n, a, cfg.coder_hidden_sizes, layout=cfg.decoder_layout,
                             name="decoders")  # p_i(a_i | e'[, s]), per agent or shared (ours)
        s = tf.zeros([1, self.state_size])
        self.pool(s), self.prior(s), self.encoder(tf.zeros([1, n * a]))
        self.decoder.unroll(tf.zeros([1, 1, n, d + (self.state_size if cfg.decoder_uses_state else 0)]))
        self.pa_optimizer = snt.optimizers.Adam(cfg.pa_lr)
        self.rng = tf.random.Generator.from_seed(seed)  # the teacher's samples
        self.pa_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="pa_updates")
        # ours: the distinct teacher joint actions seen in distillation (`joint_decoding`)
        self.repertoire = tf.Variable(tf.zeros([cfg.repertoire_size, n], tf.int32), trainable=False,
                                      name="repertoire")
        self.repertoire_count = tf.Variable(0, dtype=tf.int64, trainable=False, name="repertoire_count")
        self._tf_pa_step = tf.function(self._pa_step, jit_compile=cfg.jit_compile)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {**super().checkpoint_items(), "action_pool": self.pool, "pool_prior": self.prior,
                "joint_encoder": self.encoder, "decoders": self.decoder, "pa_optimizer": self.pa_optimizer,
                "rng": self.rng, "pa_updates": self.pa_updates, "repertoire": self.repertoire,
                "repertoire_count": self.repertoire_count}

    def train_step(self, experience) -> Dict[str, tf.Tensor]:
        if int(self.ar_updates.numpy()) < self.config.ar_steps:
            return self._teacher_step(experience)
        logs, labels = self._tf_pa_step(experience)
        if self.config.joint_decoding == "repertoire":
            self.remember(labels.numpy())
        return logs

    def remember(self, labels: np.ndarray) -> None:
        """Add the joint actions among the teacher's `labels` (M,N) that the repertoire lacks."""
        count = int(self.repertoire_count.numpy())
        new = np.unique(labels, axis=0)
        new = new[~(new[:, None] == self.repertoire[:count].numpy()[None]).all(-1).any(-1)]
        if count + len(new) > self.config.repertoire_size:
            raise TrainingError(f"config field system.repertoire_size: the teacher has produced more "
                                f"than {self.config.repertoire_size} distinct joint actions; raise it, "
                                "or set system.joint_decoding=independent")
        if len(new):
            self.repertoire[count:count + len(new)].assign(new.astype(np.int32))
            self.repertoire_count.assign(count + len(new))

    # ------------------------------------------------------------------ networks
    def _pool(self, state):
        """The action pool AP(s): (M,S) -> (M,c,d)."""
        return tf.reshape(self.pool(state), [-1, self.config.pool_size, self.config.code_dim])

    def _decode(self, code, state):
        """Decoder log-probs log p_i(.|e'[, s]): code (M,K,d), state (M,S) -> (M,K,N,A)."""
        n = self.num_agents
        x = code
        if self.config.decoder_uses_state:  # ours
            x = tf.concat([code, tf.broadcast_to(state[:, None], tf.concat([tf.shape(code)[:2],
                                                                           [self.state_size]], 0))], -1)
        if self.config.decoder_layout == "shared":  # ours: one MLP, agent i's one-hot appended
            x = tf.broadcast_to(x[:, :, None], tf.concat([tf.shape(x)[:2], [n, x.shape[-1]]], 0))
            return tf.nn.log_softmax(self.decoder.unroll(x))  # (M,K,N,A)
        x = tf.broadcast_to(x[None], tf.concat([[n], tf.shape(x)[:2], [x.shape[-1]]], 0))  # (N,M,K,in)
        logits = agentwise_unroll("mlp", agentwise_variables(self.decoder), x)  # (N,M,K,A)
        return tf.nn.log_softmax(tf.transpose(logits, [1, 2, 0, 3]))  # (M,K,N,A)

    def _teacher_sample(self, state, legals):
        """Distillation labels a_hat ~ pi^beta_AR(.|s) from the frozen teacher (Eq. 8), (M,N)."""
        rows = tf.shape(state)[0]
        actions = tf.zeros([rows, self.num_agents], tf.int32)
        seeds = self.rng.uniform_full_int([self.num_agents, 2], tf.int32)
        for i in range(self.num_agents):  # unrolled at trace time: the AR order
            probs = tf.nn.softmax(masked_logits(self.policy.agent(state, actions, i), legals[:, i]))
            probs = threshold_policy_eq8(probs, self.config.beta, self.config.threshold_weighting)
            logp = tf.where(probs > 0, tf.math.log(tf.maximum(probs, 1e-30)), MASK_VALUE)
            a_i = tf.random.stateless_categorical(logp, 1, seeds[i], dtype=tf.int32)[:, 0]
            actions = actions + a_i[:, None] * tf.one_hot(i, self.num_agents, dtype=tf.int32)
        return actions

    def _pa_step(self, experience) -> Dict[str, tf.Tensor]:
        cfg, n, a = self.config, self.num_agents, self.num_actions
        batch = unpack(experience)
        state = tf.reshape(batch.state, [-1, self.state_size])  # every row's s, (M,S)
        legals = tf.reshape(batch.legals, [-1, n, a])  # (M,N,A)
        a_hat = self._teacher_sample(state, legals)  # ours: fresh labels each step, (M,N)
        variables = (self.pool.trainable_variables + self.prior.trainable_variables
                     + self.encoder.trainable_variables + self.decoder.trainable_variables)
        with tf.GradientTape() as tape:
            pool = self._pool(state)  # (M,c,d)
            z_e = self.encoder(tf.reshape(tf.one_hot(a_hat, a), [-1, n * a]))  # (M,d)
            index = tf.argmin(tf.reduce_sum(tf.square(z_e[:, None] - pool), -1), -1)  # Eq. 9
            e = tf.gather(pool, index, batch_dims=1)  # (M,d)
            vq = vq_loss_eq10(z_e, e, cfg.vq_beta)
            code = straight_through_eq11(z_e, e)
            recon = reconstruction_loss_eq12(self._decode(code[:, None], state)[:, 0], a_hat)
            prior = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                index, self.prior(state)))  # ours: the key's prior, -log softmax(g(s))_j*
            counts = tf.math.bincount(tf.cast(index, tf.int32), minlength=cfg.pool_size,
                                      maxlength=cfg.pool_size)  # rows per entry, (c,)
            row_pick = self.rng.uniform([cfg.pool_size], 0, tf.shape(state)[0], tf.int32)
            revive = revival_loss(pool, z_e, counts, row_pick)
            loss = recon + vq + prior + cfg.revive_weight * revive
        apply_clipped(self.pa_optimizer, tape, loss, variables, cfg.grad_clip)
        self.pa_updates.assign_add(1)
        used = tf.reduce_sum(tf.cast(counts > 0, tf.float32))
        return {"reconstruction_loss": recon, "vq_loss": vq, "prior_loss": prior,
                "revival_loss": revive, "pool_entries_used": used}, a_hat

    # ----------------------------------------------------------------- execution
    def decoded_actions(self, log_p, legals) -> tf.Tensor:
        """Every agent's action from the decoders' log-probs (...,N,A): its own argmax (Eq. 12),
        or its part of the repertoire's most likely joint action (`joint_decoding`), (...,N)."""
        count = int(self.repertoire_count.numpy())
        if self.config.joint_decoding == "repertoire" and count:  # none before distillation
            return repertoire_decode(log_p, legals, self.repertoire[:count])
        return tf.argmax(masked_logits(log_p, legals), -1, output_type=tf.int32)

    def entry_actions(self, state, legals) -> tf.Tensor:
        """The joint action every pool entry decodes to, (M,c,N): state (M,S), legals (M,N,A)."""
        return self.decoded_actions(self._decode(self._pool(state), state), legals[:, None])

    def agreed_index(self, state, key) -> tf.Tensor:
        """The pool entry every agent picks from (s, k): (M,S), key (M,c) or (M,d) -> (M,)."""
        if self.config.key_mode == "gumbel_prior":  # Gumbel-max: j ~ softmax(g(s)) exactly
            return tf.argmax(self.prior(state) + gumbel_from_key(key), -1, output_type=tf.int32)
        pool = self._pool(state)  # ours ("nearest"): the entry closest to the key
        return tf.argmin(tf.reduce_sum(tf.square(key[:, None] - pool), -1), -1, output_type=tf.int32)

    def agent_action(self, i: int, state, legals, key) -> np.ndarray:
        """Agent i alone, from (s, k): what a decentralised agent runs, (M,). `legals` (M,N,A)
        are every agent's, which follow from s in the paper's MMDP (the repertoire needs them)."""
        s = tf.convert_to_tensor(state, tf.float32)
        j = self.agreed_index(s, tf.convert_to_tensor(key, tf.float32))
        e = tf.gather(self._pool(s), j, batch_dims=1)[:, None]  # (M,1,d)
        actions = self.decoded_actions(self._decode(e, s)[:, 0], tf.convert_to_tensor(legals, tf.float32))
        return actions[:, i].numpy()

    def key_size(self) -> int:
        return self.config.pool_size if self.config.key_mode == "gumbel_prior" else self.config.code_dim

    def act(self, obs, legals, rng, state=None) -> np.ndarray:
        """Decentralised: every agent decodes its part of the pool entry its shared key selects."""
        s = _state_input(obs, state)
        legals = tf.convert_to_tensor(legals, tf.float32)
        rows, a = int(s.shape[0]), self.num_actions
        entries = self.entry_actions(s, legals).numpy()  # (E,c,N)
        if self.eval_mode == "greedy":  # ours: the most likely entry (the only one when c = 1)
            j = tf.argmax(self.prior(s), -1).numpy()
        else:
            j = self.agreed_index(s, tf.convert_to_tensor(rng.standard_normal((rows, self.key_size())),
                                                          tf.float32)).numpy()
        actions = entries[np.arange(rows), j]  # (E,N)
        if self.eval_mode == "greedy":  # how much of the deterministic teacher survives distillation
            same = actions == self.greedy_joint_action(s, legals)
            self.last_step_stats = {"teacher_agreement": same.mean(-1)}
        if self.eval_mode == "greedy" or self.config.pool_size == 1:
            self.last_marginals = np.eye(a)[actions]
        else:  # Eq. 21 by Monte Carlo over keys k ~ N(0, I)
            m = self.config.entropy_samples
            keys = rng.standard_normal((rows * m, self.key_size()))
            picks = self.agreed_index(tf.repeat(s, m, axis=0), tf.convert_to_tensor(keys, tf.float32))
            picked = entries[np.repeat(np.arange(rows), m), picks.numpy()]  # (E*M,N)
            self.last_marginals = np.eye(a)[picked].reshape(rows, m, self.num_agents, a).mean(1)
        return actions.astype(np.int32)
