"""`BaseOfflineSystem`: OG-MARL's offline-system contract (og_marl_contract.md section 3).

A system implements `train_step(experience) -> dict of floats`, `initial_state(E)` and
`_policy_step(obs (E,N,O), legals (E,N,A), state) -> (scores (E,N,A), state)` (masked
logits or Q-values); this base supplies `reset`, `select_actions`, `evaluate` and
`train` with OG-MARL's behaviour and log keys. Evaluation chooses actions by the
system's `eval_mode`: `greedy` (argmax of the scores) or `stochastic` (sample from
softmax of the scores).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from og_marl_inspo.networks import masked_logits, sample_actions

EVAL_MODES = ("stochastic", "greedy")


class BaseOfflineSystem:
    """Base of every og-marl-inspo system. `Config` is the system's dataclass."""

    Config = None

    def __init__(self, environment, logger=None, seed: int = 0, eval_mode: str = "stochastic") -> None:
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"config field system.eval_mode: {eval_mode!r}; choose one of "
                             f"{', '.join(EVAL_MODES)}")
        self.environment = environment
        self.logger = logger
        self.agents = list(environment.agents)
        self.num_agents = len(self.agents)
        self.num_actions = int(environment.num_actions)
        self.eval_mode = eval_mode
        self.seed = seed
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False, name="training_step")
        self._act_rng = np.random.default_rng(seed)
        self._state = None
        # P(a_i|s) of the last `act` call, (E,N,A): the acting policy's per-agent action
        # marginals, read by the evaluation for the policy average entropy (CPA Eq. 19).
        self.last_marginals: Optional[np.ndarray] = None
        # Per-episode figures (E,) of the last `act` call, name -> array, that the evaluation
        # averages over every visited state (e.g. cpa_pa's `teacher_agreement`); None if none.
        self.last_step_stats: Optional[Dict[str, np.ndarray]] = None

    # ------------------------------------------------------------- OG-MARL API
    @property
    def training_step_ctr(self) -> int:
        return int(self._step.numpy())

    @training_step_ctr.setter
    def training_step_ctr(self, value: int) -> None:
        self._step.assign(value)

    def reset(self, num_episodes: int = 1) -> None:
        """Start new episodes: reset recurrent state (E = num_episodes)."""
        self._state = self.initial_state(num_episodes)

    def select_actions(self, observations: Dict, legal_actions: Optional[Dict] = None,
                       explore: bool = False) -> Dict:
        """OG-MARL's per-step call: dicts in `agents` order in and out. `explore` is ignored."""
        obs = np.stack([np.asarray(observations[a], np.float32) for a in self.agents])[None]
        if legal_actions is None:
            legals = np.ones((1, self.num_agents, self.num_actions), np.float32)
        else:
            legals = np.stack([np.asarray(legal_actions[a], np.float32) for a in self.agents])[None]
        if self._state is None:
            self.reset(1)
        actions = self.act(obs, legals, self._act_rng)[0]
        return {agent: np.int32(actions[i]) for i, agent in enumerate(self.agents)}

    def act(self, obs: np.ndarray, legals: np.ndarray, rng: np.random.Generator,
            state: Optional[np.ndarray] = None) -> np.ndarray:
        """Actions (E, N) for E running episodes, one network call for all of them."""
        scores, self._state = self._policy_step(tf.convert_to_tensor(obs, tf.float32),
                                                tf.convert_to_tensor(legals, tf.float32), self._state)
        probs = tf.nn.softmax(scores).numpy()  # masked actions get probability 0
        scores = scores.numpy()
        if self.eval_mode == "greedy":
            actions = scores.argmax(axis=-1)
            self.last_marginals = np.eye(self.num_actions)[actions]
        else:
            actions = sample_actions(scores, rng)
            self.last_marginals = probs
        return actions.astype(np.int32)

    def evaluate(self, num_eval_episodes: int = 32) -> Dict[str, float]:
        from og_marl_inspo.trainer import run_episodes

        returns = run_episodes(self, self.environment, num_eval_episodes,
                               seed=self.seed + self.training_step_ctr)["episode_returns"]
        return {"evaluation/mean_episode_return": float(np.mean(returns)),
                "evaluation/max_episode_return": float(np.max(returns)),
                "evaluation/min_episode_return": float(np.min(returns))}

    def train(self, replay_buffer, training_steps: int = 100_000, evaluation_every: Optional[int] = 5000,
              num_eval_episodes: int = 32) -> None:
        """OG-MARL's `train`: evaluate at 0, every `evaluation_every`, and 10x at the end."""
        from og_marl_inspo.trainer import og_marl_train

        og_marl_train(self, replay_buffer, training_steps, evaluation_every, num_eval_episodes)

    # ----------------------------------------------------------- to implement
    #: The attribute naming the network that acts: a `Torso` whose masked outputs are the
    #: scores `eval_mode` reads (logits of a policy, or Q-values for greedy Q-learners).
    ACTING_NETWORK = "policy"

    def train_step(self, experience) -> Dict[str, float]:
        """One update; by default the subclass's compiled `_tf_train_step`."""
        return self._tf_train_step(experience)

    def initial_state(self, num_episodes: int):
        return getattr(self, self.ACTING_NETWORK).initial_state(num_episodes)

    def _policy_step(self, obs, legals, state):
        scores, state = getattr(self, self.ACTING_NETWORK).step(obs, state)
        return masked_logits(scores, legals), state

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        """Everything a checkpoint must hold: networks, optimisers, generators."""
        raise NotImplementedError
