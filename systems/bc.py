"""BC run config (algorithms.md 4.1): `get_config("env/scenario")`.

Small games: MLP 2x64, Adam 1e-3, 256 transitions per batch, stochastic evaluation
(the InSPO tables). Grid games (Bridge, Sensor, Aloha): MLP 2x128, batch 128, 1000 steps,
`--config.system.eval_mode=greedy` for the CPA table. SMAC: the CFCQL repository's BC (GRU 64,
Adam 5e-4, greedy).
"""

import dataclasses

from og_marl_inspo.baselines.bc import BCConfig
from og_marl_inspo.config import build_config

# Grid games (ours, measured on 2 CPU cores): MLP 2x128 on one-transition windows, batch
# 128, Adam 1e-3, XLA; on Bridge Poor the loss moves < 0.2 % between steps 1000 and 2000. Final
# evaluation 10 x 50 = 500 episodes (standard error of the Bridge mean ~0.15).
_GRID = {"training_steps": 1000, "system.hidden_sizes": (128, 128), "system.jit_compile": True,
         "replay.sequence_length": 2, "replay.batch_size": 128,
         "evaluation.every": 1000, "evaluation.episodes": 50, "checkpoint_every": 500}

OVERRIDES = {
    "matrix": {"training_steps": 1000, "evaluation.every": 500, "evaluation.episodes": 1000,
               "checkpoint_every": 500},
    "bridge": _GRID,
    "sensor": _GRID,
    "aloha": _GRID,
    "smac_v1": {"system.torso": "gru", "system.learning_rate": 5e-4, "system.eval_mode": "greedy",
                "system.jit_compile": True, "replay.sequence_length": 20, "replay.batch_size": 32,
                "training_steps": 100_000, "evaluation.every": 5000, "evaluation.episodes": 32,
                "checkpoint_every": 5000},
}


def get_config(arg: str = ""):
    return build_config("bc", dataclasses.asdict(BCConfig()), OVERRIDES, arg)
