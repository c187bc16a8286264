"""MAICQ run config (algorithms.md 4.4): `get_config("env/scenario")`.

OG-MARL's MAICQ settings (QMIX mixer 32/64, advantage beta 0.1, target beta 1000, hard
target every 200 steps, greedy evaluation). Small games (ours): MLP 2x128, Adam 5e-4,
256 one-step transitions per batch, the step counts CPA's configs use so that the CPA
table compares like with like. SMAC: OG-MARL's GRU 64, Adam 3e-4, 32 windows of 20.
"""

import dataclasses

from og_marl_inspo.baselines.maicq import MAICQConfig
from og_marl_inspo.config import build_config

OVERRIDES = {
    "matrix": {"training_steps": 800, "evaluation.every": 400, "evaluation.episodes": 100,
               "checkpoint_every": 400},
    "bridge": {"training_steps": 20_000, "evaluation.every": 5000, "evaluation.episodes": 50,
               "checkpoint_every": 5000},
    "sensor": {"training_steps": 20_000, "evaluation.every": 5000, "evaluation.episodes": 50,
               "checkpoint_every": 5000},
    "aloha": {"training_steps": 20_000, "evaluation.every": 5000, "evaluation.episodes": 50,
              "checkpoint_every": 5000},
    "smac_v1": {"system.torso": "gru", "system.hidden_sizes": (64,), "system.learning_rate": 3e-4,
                "system.jit_compile": True, "replay.sequence_length": 20, "replay.batch_size": 32,
                "training_steps": 100_000, "evaluation.every": 5000, "evaluation.episodes": 32,
                "checkpoint_every": 5000},
}


def get_config(arg: str = ""):
    return build_config("maicq", dataclasses.asdict(MAICQConfig()), OVERRIDES, arg)
