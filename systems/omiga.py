"""OMIGA run config (algorithms.md 4.7): `get_config("env/scenario")`.

Defaults are the OMIGA SMAC code's: alpha 10, three Adams at 5e-4, grad clip 1, Polyak
0.005 on target Q, V and mixer, MLP 2x256 on [o_i, id], mixer hidden 64, 128 transitions
per batch, argmax evaluation.
Small games (InSPO's settings unavailable; ours, from the sweep alpha in {1, 10}): MLP
2x64, 256 transitions per batch, sampled evaluation; XOR alpha 10 for 300 steps, M-NE
alpha 1 for 800 steps (alpha 10 is still at 2.45 on Imbalanced after 1000 steps, alpha 1
reaches 5.0 by step 800; on XOR B alpha 1 drifts to -0.15, alpha 10 stays at 0.20). SMAC: the
policy is a GRU over the observation history (their MLP policy saw per-agent states
that the CFCQL vaults lack) and the mixer reads the global state.

Bridge, InSPO Table 3 (`reproduce inspo-table3 --envs bridge --systems omiga`, 5 seeds,
sampled evaluation, paper in brackets): Optimal -3.10 +- 1.71 (-9.87), per seed -1.71 / -1.77 /
-3.95 / -1.97 / -6.10; Mixed -10.87 +- 0.38 (-13.45). Both beat the paper's values, which lie
below BC's (-2.21, -5.88). On Optimal every evaluation from step 5 000 on lies in -1.7 to -5.0.
"""

import dataclasses

from og_marl_inspo.baselines.omiga import OMIGAConfig
from og_marl_inspo.config import build_config

_SMALL = {"system.hidden_sizes": (64, 64), "system.eval_mode": "stochastic",
          "replay.sequence_length": 2, "replay.batch_size": 256}
_GRID = {**_SMALL, "system.hidden_sizes": (128, 128), "training_steps": 50_000,
         "evaluation.every": 5000, "evaluation.episodes": 100, "checkpoint_every": 5000}

OVERRIDES = {
    "matrix": {**_SMALL, "training_steps": 300, "evaluation.every": 150, "evaluation.episodes": 1000,
               "checkpoint_every": 150},
    "xor": {"system.alpha": 10.0},
    "m_ne": {"system.alpha": 1.0, "training_steps": 800, "evaluation.every": 400,
             "checkpoint_every": 400},
    "bridge": _GRID,
    "sensor": _GRID,
    "aloha": _GRID,
    "smac_v1": {"system.torso": "gru", "system.eval_mode": "greedy", "system.jit_compile": True,
                "replay.sequence_length": 20, "replay.batch_size": 32, "training_steps": 100_000,
                "evaluation.every": 5000, "evaluation.episodes": 32, "checkpoint_every": 5000},
}


def get_config(arg: str = ""):
    return build_config("omiga", dataclasses.asdict(OMIGAConfig()), OVERRIDES, arg)
