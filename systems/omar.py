"""OMAR run config (algorithms.md 4.5): `get_config("env/scenario")`.

Defaults are the CFCQL repository's discrete OMAR (Adam 1e-3 for actor and critics, CQL
weight 5, omar_coe 0.5, TD(lambda = 0.6), hard target copy every 200 steps, grad clip 10,
greedy evaluation), the runs behind InSPO's SMAC OMAR row.
Small games (InSPO's settings are in its unavailable Appendix C; ours): MLP policy and
critics 2x64 on [s, o_i, id], one-step targets (td_lambda 0), 256 transitions per batch,
sampled evaluation (the InSPO tables; `reproduce` sets the table's mode).
Matrix games use CQL weight 0.1 (ours), not the CFCQL repo's 5. At 5 each agent on XOR (b)
prefers its more frequent action A, and OMAR scores 0.00 +- 0.00 where InSPO reports -2.00; at
0.1 (5 seeds, sampled evaluation) XOR (b) gives -2.00 +- 0.00, (c) 0.00 +- 0.00 and M-NE 20 / 5,
all as InSPO's Tables 1-2, and the (B,B) panel of its Fig. 3. XOR (a) stays near 0 at either
weight (InSPO: 1.00): independent learners on two tied actions do not coordinate.

Bridge, InSPO Table 3 (`reproduce inspo-table3 --envs bridge --systems omar`, 5 seeds,
sampled evaluation): Optimal and Mixed both -15.50 +- 0.00 (paper -6.01 +- 0.00 each, a value
InSPO copies from AlberDICE's paper). Every seed deadlocks at the start: agent_0 steps right
and agent_1 left, each toward its own goal, so they try to swap cells and both stay. Each
agent's Q_i there puts right and left within 0.03-0.14 of each other, and its policy is
one-hot on its own side. Optimal crosses at some evaluations (-1.29), never at the final one.
"""

import dataclasses

from og_marl_inspo.baselines.omar import OMARConfig
from og_marl_inspo.config import build_config

_SMALL = {"system.td_lambda": 0.0, "system.hidden_sizes": (64, 64),
          "system.critic_hidden_sizes": (64, 64), "system.eval_mode": "stochastic",
          "replay.sequence_length": 2, "replay.batch_size": 256}
_GRID = {**_SMALL, "system.hidden_sizes": (128, 128), "system.critic_hidden_sizes": (128, 128),
         "training_steps": 50_000, "evaluation.every": 5000, "evaluation.episodes": 100,
         "checkpoint_every": 5000}

OVERRIDES = {
    "matrix": {**_SMALL, "system.cql_alpha": 0.1, "training_steps": 300, "evaluation.every": 150,
               "evaluation.episodes": 1000, "checkpoint_every": 150},
    "bridge": _GRID,
    "sensor": _GRID,
    "aloha": _GRID,
    "smac_v1": {"system.torso": "gru", "system.eval_mode": "greedy", "system.jit_compile": True,
                "replay.sequence_length": 20, "replay.batch_size": 32, "training_steps": 100_000,
                "evaluation.every": 5000, "evaluation.episodes": 32, "checkpoint_every": 5000},
}


def get_config(arg: str = ""):
    return build_config("omar", dataclasses.asdict(OMARConfig()), OVERRIDES, arg)
