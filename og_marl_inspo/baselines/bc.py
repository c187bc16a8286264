"""Behaviour cloning (algorithms.md 4.1): maximum likelihood of the dataset's actions.

    L = -mean_{b,t,i} log pi_i(a_i(t) | o_i history)      (masked softmax over legal actions)

MLP torso for the stateless and fully observed games, GRU torso (OG-MARL's
Linear-GRU-Linear, hidden state reset after terminals) for partially observed tasks;
one parameter set shared by all agents with the one-hot agent id appended
(OG-MARL's `add_agent_id_to_obs`). Evaluation samples from the policy
(`eval_mode="stochastic"`, the InSPO tables and OG-MARL's discrete BC) or takes the
argmax (`"greedy"`, the CPA table).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import sonnet as snt
import tensorflow as tf

from og_marl_inspo.base import EVAL_MODES, BaseOfflineSystem
from og_marl_inspo.batch import unpack
from og_marl_inspo.config import check_fields
from og_marl_inspo.networks import Torso, masked_logits


@dataclasses.dataclass
class BCConfig:
    learning_rate: float = 1e-3      # Adam; OG-MARL yaml 3e-4, CFCQL repo 5e-4 (SMAC override)
    torso: str = "mlp"               # "mlp" (matrix, grid games) or "gru" (SMAC)
    hidden_sizes: Tuple[int, ...] = (64, 64)   # MLP widths; GRU uses the first as its size
    add_agent_id_to_obs: bool = True
    eval_mode: str = "stochastic"    # "stochastic" (sample) or "greedy" (argmax)
    jit_compile: bool = False        # XLA for the train step (worth it for GRU windows)

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        check_fields(self, [
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("torso", self.torso in ("mlp", "gru"), "choose 'mlp' or 'gru'"),
            ("hidden_sizes", len(self.hidden_sizes) > 0 and min(self.hidden_sizes) > 0,
             "needs positive widths"),
            ("eval_mode", self.eval_mode in EVAL_MODES, f"choose one of {', '.join(EVAL_MODES)}"),
        ])


class BCSystem(BaseOfflineSystem):
    """Discrete behaviour cloning, registered as `bc`."""

    Config = BCConfig

    def __init__(self, environment, logger=None, seed: int = 0, **kwargs) -> None:
        self.config = BCConfig(**kwargs)
        super().__init__(environment, logger, seed=seed, eval_mode=self.config.eval_mode)
        self.policy = Torso(self.config.torso, self.num_agents, self.num_actions,
                            self.config.hidden_sizes, layout="shared",
                            add_agent_id=self.config.add_agent_id_to_obs, name="policy")
        self.optimizer = snt.optimizers.Adam(self.config.learning_rate)
        self._tf_train_step = tf.function(self._train_step, jit_compile=self.config.jit_compile)

    def checkpoint_items(self) -> Dict[str, tf.Module]:
        return {"policy": self.policy, "optimizer": self.optimizer}

    def _train_step(self, experience) -> Dict[str, tf.Tensor]:
        batch = unpack(experience)
        with tf.GradientTape() as tape:
            logits = masked_logits(self.policy.unroll(batch.obs, batch.resets), batch.legals)  # (B,T,N,A)
            log_probs = tf.nn.log_softmax(logits)
            taken = tf.gather(log_probs, batch.actions, batch_dims=3)  # (B,T,N)
            loss = -tf.reduce_mean(taken)  # BC: negative log-likelihood of dataset actions
        variables = self.policy.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply(grads, variables)
        return {"policy_loss": loss}
