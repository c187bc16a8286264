"""OMAR: "Plan Better Amid Conservatism: Offline Multi-Agent Reinforcement Learning with
Actor Rectification" (Pan, Huang, Li, Chen, Xu; ICML 2022; arXiv 2111.11188).

Discrete form, as the CFCQL repository's `omar_learner` (thu-rllab/CFCQL, `discrete/`)
that produced the OMAR rows InSPO reports (algorithms.md 4.5). Per agent i, independent:

  - two critics Q_i^{1,2}(s, o_i, id) -> (A,), each a dueling sum of an advantage head and
    a value head, trained with a CQL penalty (OMAR Eq. 3) on TD(lambda) targets built from
    the target policy's greedy action and the minimum of the two target critics;
  - a softmax policy pi_i(. | o_i) (MLP, or GRU over the observation history), trained by
    OMAR Eq. 6: (1 - c) x policy gradient with a baseline + c x ||pi - one_hot(a*)||^2,
    a* the rectified action found by a zeroth-order search on Q_i^1.

The continuous paper finds a* by iterative Gaussian cross-entropy search (CEM). On discrete
actions the CFCQL code takes the exact argmax; that is our default (`action_search =
"argmax"`, over legal actions only); `"cem"` keeps the paper's sampled search with a
categorical proposal (`omar_iters`, `omar_num_samples`, `omar_num_elites`).

Departures (each a config field, `# ours:` below): the second critic keeps its own output
heads (their code reuses the first critic's, a bug); the argmax and the policy are taken
over legal actions and renormalised; the CEM proposal starts uniform over legal actions.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import sonnet as snt
import tensorflow as tf

from og_marl_inspo.base import EVAL_MODES, BaseOfflineSystem
from og_marl_inspo.batch import unpack
from og_marl_inspo.config import check_fields
from og_marl_inspo.networks import MASK_VALUE, Torso, masked_logits
from og_marl_inspo.td import hard_update, td_lambda_targets

ACTION_SEARCHES = ("argmax", "cem")
RECTIFICATIONS = ("mean", "sum")


@dataclasses.dataclass
class OMARConfig:
    gamma: float = 0.99
    policy_lr: float = 1e-3          # CFCQL repo omar: Adam, actor lr
    critic_lr: float = 1e-3          # CFCQL repo omar: Adam, critic lr
    cql_alpha: float = 5.0           # CQL weight (CFCQL repo omar)
    omar_coe: float = 0.5            # c of OMAR Eq. 6 (CFCQL repo; continuous OMAR 0.7 in OG-MARL)
    log_prob_floor: float = 1e-5     # CFCQL repo: log(pi(a_i) + 1e-5) in the policy gradient; 0 = log pi
    rectification: str = "mean"      # CFCQL repo: mse over the A entries of pi - one_hot(a*); "sum":
    #                                  Eq. 6's squared norm, A times the weight
    td_lambda: float = 0.6           # CFCQL repo; small games 0 (one-step targets)
    target_update_period: int = 200  # hard copy of critics and policy (CFCQL repo)
    grad_clip: float = 10.0
    action_search: str = "argmax"    # "argmax" (CFCQL repo, exact) or "cem" (paper's sampled search)
    omar_iters: int = 3              # CEM rounds (OMAR repo MPE default)
    omar_num_samples: int = 10       # CEM samples per round (OMAR repo MPE default)
    omar_num_elites: int = 5         # CEM elites per round; OMAR repo MPE: 10 of 10 samples
    torso: str = "mlp"               # policy: "mlp" (small games) or "gru" (SMAC)
    hidden_sizes: Tuple[int, ...] = (64, 64)          # policy widths; GRU uses the first
    critic_hidden_sizes: Tuple[int, ...] = (256, 256)  # CFCQL repo omar critic MLP
    add_agent_id_to_obs: bool = True
    eval_mode: str = "greedy"        # CFCQL repo: greedy; InSPO small-game tables sample
    jit_compile: bool = False

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        self.critic_hidden_sizes = tuple(self.critic_hidden_sizes)
        check_fields(self, [
            ("gamma", 0 <= self.gamma <= 1, "must be in [0, 1]"),
            ("policy_lr", self.policy_lr > 0, "must be > 0"),
            ("critic_lr", self.critic_lr > 0, "must be > 0"),
            ("cql_alpha", self.cql_alpha >= 0, "must be >= 0"),
            ("omar_coe", 0 <= self.omar_coe <= 1, "must be in [0, 1]"),
            ("log_prob_floor", 0 <= self.log_prob_floor < 1, "must be in [0, 1)"),
            ("rectification", self.rectification in RECTIFICATIONS, f"choose one of {', '.join(RECTIFICATIONS)}"),
            ("td_lambda", 0 <= self.td_lambda <= 1, "must be in [0, 1]"),
            ("target_update_period", self.target_update_period >= 1, "must be >= 1"),
            ("grad_clip", self.grad_clip > 0, "must be > 0"),
            ("action_search", self.action_search in ACTION_SEARCHES,
             f"choose one of {', '.join(ACTION_SEARCHES)}"),
            ("omar_iters", self.omar_iters >= 1, "must be >= 1"),
            ("omar_num_samples", self.omar_num_samples >= 1, "must be >= 1"),
            ("omar_num_elites", 1 <= self.omar_num_elites <= self.omar_num_samples,
             "must be in [1, omar_num_samples]"),
            ("torso", self.torso in ("mlp", "gru"), "choose 'mlp' or 'gru'"),
            ("hidden_sizes", len(self.hidden_sizes) > 0 and min(self.hidden_sizes) > 0,
             "needs positive widths"),
            ("critic_hidden_sizes", len(self.critic_hidden_sizes) > 0 and min(self.critic_hidden_sizes) > 0,
             "needs positive widths"),
            ("eval_mode", self.eval_mode in EVAL_MODES, f"choose one of {', '.join(EVAL_MODES)}"),
        ])


# ----------------------------------------------------------------------------- losses
def dueling_q(out):
    """Q = advantage head + value head; out (..., A+1) -> (..., A)."""
    return out[..., :-1] + out[..., -1:]


def cql_critic_loss_eq3(q, taken, y, legals, cql_alpha):
    """OMAR Eq. 3 (CQL critic): (Q(a) - y)^2 + alpha (logsumexp_{a legal} Q - Q(a)).

    q (B,T-1,N,A), taken one-hot (B,T-1,N,A), y (B,T-1,N), legals (B,T-1,N,A) -> scalar.
    """
    q_taken = tf.reduce_sum(taken * q, -1)
    penalty = tf.reduce_logsumexp(masked_logits(q, legals), -1) - q_taken
    return tf.reduce_mean(tf.square(q_taken - y)) + cql_alpha * tf.reduce_mean(penalty)


def actor_loss_eq6(log_pi, q, taken, rectified, coe, log_prob_floor=0.0, rectification="sum"):
    """OMAR Eq. 6, discrete (CFCQL repo): (1-c) PG with baseline + c ||pi - one_hot(a*)||^2.

    The PG term reads log(pi(a_i) + log_prob_floor): with the CFCQL repo's floor of 1e-5
    an action the policy has all but dropped stops pulling its logit further down (with
    the bare log pi, the loss fell to -4e6 on Bridge as the logits grew apart).
    `rectification="mean"` averages the squared error over the A entries, as their
    mse_loss; "sum" is Eq. 6's squared norm.

    log_pi, q, taken, rectified (one-hot a*) all (B,T-1,N,A) -> scalar.
    """
    pi = tf.exp(log_pi)
    advantage = tf.stop_gradient(tf.reduce_sum((taken - pi) * q, -1))  # Q(a_i) - E_pi Q
    if log_prob_floor > 0:
        log_pi_taken = tf.math.log(tf.reduce_sum(taken * pi, -1) + log_prob_floor)
    else:
        log_pi_taken = tf.reduce_sum(taken * log_pi, -1)
    policy_gradient = -tf.reduce_mean(advantage * log_pi_taken)
    squared = tf.square(pi - rectified)
    rectification_loss = tf.reduce_mean(squared if rectification == "mean" else tf.reduce_sum(squared, -1))
    return (1.0 - coe) * policy_gradient + coe * rectification_loss


def rectified_actions(q, legals, mode, seed=None, iters=3, samples=10, elites=5):
    """OMAR's zeroth-order action search on Q: a* (...) int32, always a legal action.

    "argmax": the exact best legal action. "cem": `iters` rounds of `samples` draws from a
    categorical proposal (uniform over legal actions at first, ours), refit to the
    `elites` best draws; a* is the best action drawn in any round.
    """
    if mode == "argmax":
        return tf.argmax(masked_logits(q, legals), -1, output_type=tf.int32)
    num_actions = q.shape[-1]
    flat_q = tf.reshape(q, [-1, num_actions])  # (K,A)
    flat_legal = tf.reshape(legals, [-1, num_actions])
    log_probs = masked_logits(tf.zeros_like(flat_q), flat_legal)  # uniform over legal actions
    best_q = tf.fill(tf.shape(flat_q)[:1], MASK_VALUE)
    best = tf.zeros(tf.shape(flat_q)[:1], tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, iters)
    for k in range(iters):  # few rounds, unrolled at trace time
        draws = tf.random.stateless_categorical(log_probs, samples, seeds[k], dtype=tf.int32)  # (K,S)
        values = tf.gather(flat_q, draws, batch_dims=1)  # (K,S)
        top_values, top = tf.math.top_k(values, elites)  # (K,E)
        elite_actions = tf.gather(draws, top, batch_dims=1)
        round_best = top_values[:, 0]
        best = tf.where(round_best > best_q, elite_actions[:, 0], best)
        best_q = tf.maximum(best_q, round_best)
        counts = tf.reduce_sum(tf.one_hot(elite_actions, num_actions), 1)  # (K,A), elites only
        log_probs = masked_logits(tf.math.log(counts + 1e-3), flat_legal)  # ours: smoothed refit
    return tf.reshape(best, tf.shape(q)[:-1])


# ----------------------------------------------------------------------------- system
class OMARSystem(BaseOfflineSystem):
    """Discrete OMAR with CQL critics, registered as `omar`."""

    Config = OMARConfig

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = cfg = OMARConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=cfg.eval_mode)
        n, a = self.num_agents, self.num_actions
        obs_size = int(environment.observation_shape[-1])
        state_size = int(environment.state_shape[-1])
        tf.random.set_seed(seed)  # initialisers draw from the global seed
        self.rng = tf.random.Generator.from_seed(seed)

        def net(kind, out, sizes, inputs, name):
            torso = Torso(kind, n, out, sizes, layout="shared", add_agent_id=cfg.add_agent_id_to_obs,
                          name=name)
            torso.unroll(tf.zeros([1, 1, n, inputs]))  # build now: targets copy the variables
            return torso

        critic_in = state_size + obs_size  # [s, o_i] (+ id inside the torso)
        self.policy = net(cfg.torso, a, cfg.hidden_sizes, obs_size, "policy")
        self.target_policy = net(cfg.torso, a, cfg.hidden_sizes, obs_size, "target_policy")
        self.critics = [net("mlp", a + 1, cfg.critic_hidden_sizes, critic_in, f"critic_{k}") for k in (1, 2)]
        self.target_critics = [net("mlp", a + 1, cfg.critic_hidden_sizes, critic_in, f"target_critic_{k}")
                               for k in (1, 2)]
        self._critic_vars = [v for c in self.critics for v in c.trainable_variables]
        self._target_vars = [v for c in self.target_critics for v in c.trainable_variables]
        hard_update(self._target_vars + list(self.target_policy.trainable_variables),
                    self._critic_vars + list(self.policy.trainable_variables))
        self.policy_optimizer = snt.optimizers.Adam(cfg.policy_lr)
        self.critic_optimizer = snt.optimizers.Adam(cfg.critic_lr)
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")
        self._tf_train_step = tf.function(self._train_step, jit_compile=cfg.jit_compile, autograph=False)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        items = {"policy": self.policy, "target_policy": self.target_policy, "rng": self.rng,
                 "policy_optimizer": self.policy_optimizer, "critic_optimizer": self.critic_optimizer,
                 "updates": self.updates}
        for k in range(2):
            items[f"critic_{k + 1}"] = self.critics[k]
            items[f"target_critic_{k + 1}"] = self.target_critics[k]
        return items

    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        cfg = self.config
        batch = unpack(experience)
        state = tf.broadcast_to(batch.state[:, :, None], batch.obs.shape[:3] + batch.state.shape[-1:])
        critic_in = tf.concat([state, batch.obs], -1)  # (B,T,N,S+O)
        taken = tf.one_hot(batch.actions, self.num_actions)[:, :-1]  # (B,T-1,N,A)
        legals = batch.legals  # (B,T,N,A)
        dones = tf.broadcast_to(batch.dones[..., None], batch.actions.shape)  # (B,T,N)
        rewards = tf.broadcast_to(batch.rewards[..., None], batch.actions.shape)

        # target: the target policy's greedy legal action, each target critic's value there
        target_logits = masked_logits(self.target_policy.unroll(batch.obs, batch.resets), legals)
        next_action = tf.one_hot(tf.argmax(target_logits, -1), self.num_actions)  # (B,T,N,A)
        targets = []
        for critic in self.target_critics:
            x = tf.reduce_sum(next_action * dueling_q(critic.unroll(critic_in)), -1)  # (B,T,N)
            targets.append(td_lambda_targets(rewards, dones, x, cfg.gamma, cfg.td_lambda))  # (B,T-1,N)
        y = tf.stop_gradient(tf.minimum(targets[0], targets[1]))  # min over the two critics

        with tf.GradientTape() as tape:
            qs = [dueling_q(c.unroll(critic_in))[:, :-1] for c in self.critics]  # 2 x (B,T-1,N,A)
            critic_loss = sum(cql_critic_loss_eq3(q, taken, y, legals[:, :-1], cfg.cql_alpha) for q in qs)
        grads = tape.gradient(critic_loss, self._critic_vars)
        grads, _ = tf.clip_by_global_norm(grads, cfg.grad_clip)
        self.critic_optimizer.apply(grads, self._critic_vars)

        q1 = tf.stop_gradient(qs[0])  # (B,T-1,N,A)
        search_seed = self.rng.uniform_full_int([2], tf.int32)
        best = rectified_actions(q1, legals[:, :-1], cfg.action_search, search_seed, cfg.omar_iters,
                                 cfg.omar_num_samples, cfg.omar_num_elites)  # (B,T-1,N)
        rectified = tf.one_hot(best, self.num_actions)
        policy_vars = self.policy.trainable_variables
        with tf.GradientTape() as tape:
            logits = masked_logits(self.policy.unroll(batch.obs, batch.resets), legals)[:, :-1]
            log_pi = tf.nn.log_softmax(logits)  # renormalised over legal actions (ours)
            policy_loss = actor_loss_eq6(log_pi, q1, taken, rectified, cfg.omar_coe,  # OMAR Eq. 6
                                         cfg.log_prob_floor, cfg.rectification)
        grads = tape.gradient(policy_loss, policy_vars)
        grads, _ = tf.clip_by_global_norm(grads, cfg.grad_clip)
        self.policy_optimizer.apply(grads, policy_vars)

        self.updates.assign_add(1)
        if_copy = tf.equal(self.updates % cfg.target_update_period, 0)
        sources = self._critic_vars + list(self.policy.trainable_variables)
        targets_vars = self._target_vars + list(self.target_policy.trainable_variables)
        for target, source in zip(targets_vars, sources):  # hard copy every period (algorithms.md 1.5)
            target.assign(tf.where(if_copy, source, target))
        return {"critic_loss": critic_loss, "policy_loss": policy_loss,
                "q_mean": tf.reduce_mean(tf.reduce_sum(taken * q1, -1))}
