"""BC run config (algorithms.md 4.1): `get_config("env/scenario")`.

Small games: MLP 2x64, Adam 1e-3, 256 transitions per batch, stochastic evaluation
(the InSPO tables). SMAC: the CFCQL repository's BC (GRU 64, Adam 5e-4, greedy).
"""

import dataclasses

from og_marl_inspo.baselines.bc import BCConfig
from og_marl_inspo.config import build_config

OVERRIDES = {
    "matrix": {"training_steps": 1000, "evaluation.every": 500, "evaluation.episodes": 1000,
               "checkpoint_every": 500},
    "smac_v1": {"system.torso": "gru", "system.learning_rate": 5e-4, "system.eval_mode": "greedy",
                "system.jit_compile": True, "replay.sequence_length": 20, "replay.batch_size": 32,
                "training_steps": 100_000, "evaluation.every": 5000, "evaluation.episodes": 32,
                "checkpoint_every": 5000},
}


def get_config(arg: str = ""):
    return build_config("bc", dataclasses.asdict(BCConfig()), OVERRIDES, arg)
