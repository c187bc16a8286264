"""BCQ run config (algorithms.md 4.2): `get_config("env/scenario")`.

SMAC: OG-MARL's IQL+BCQ yaml (GRU 64, Adam 3e-4 for Q and for the behaviour model,
`bc_threshold` 0.4, hard target copy every 200 updates, no logit penalty, 32 windows of
20, greedy). Small games: the discrete-BCQ paper's tau = 0.3 and 0.01 logit penalty with
an MLP (ours: 2x64, Adam 1e-3, one-step transitions), greedy evaluation as CPA Table 1.

Bridge with `_GRID` (2x128, Adam 3e-4, 50 000 steps; `reproduce cpa-table1 --envs bridge
--systems bcq,cql`, 5 seeds, final greedy return, paper in brackets): Poor
-12.65 +- 5.68 (-11.54), Medium -15.50 +- 0.00 (-15.41), Good -3.97 +- 3.30 (-16.23). On
Poor and Medium the greedy joint action flips between deadlock at the bridge (-15.5) and
crossing (-1.3) from one evaluation to the next. Sensor, 5 seeds: Poor 25.87 +- 0.15
(4.43 +- 1.77), Medium 26.33 +- 0.07 (6.22 +- 7.21), Good 26.65 +- 0.28 (4.62 +- 2.79).
Every evaluation from step 5 000 on lies between 25.2 and 27.7, level with our BC
(26.00 / 26.61 / 27.03) and CQL (25.44 / 26.95 / 26.86) on the same vaults.
Aloha, 5 seeds: Poor 0.00 +- 0.00 (1.80 +- 1.94, so within the paper's +-), Medium
24.12 +- 0.52 (2.50 +- 4.00), Good -1970.29 +- 16.18 (0.00 +- 0.00). The filter tau = 0.3
allows both actions at every backlog b >= 1 on all three vaults (each transmits about
half the time with a packet), so each Q_i is an independent Q-learner and learns CQL's
rules (systems/cql.py): on Poor Q_i(b, transmit) < Q_i(b, wait) everywhere, the team that
never transmits; on Medium only agents 0 and 9 transmit (at b = 2-4 on every seed; at
b = 1 agent 9 on every seed, agent 0 on 2 of 5), and they are not neighbours; on Good
every agent transmits at b >= 2 and most at b = 1, and nearly every transmission collides.
"""

import dataclasses

from og_marl_inspo.baselines.bcq import BCQConfig
from og_marl_inspo.config import build_config

_GRID = {"training_steps": 50_000, "system.learning_rate": 3e-4, "system.bc_learning_rate": 3e-4,
         "system.hidden_sizes": (128, 128), "replay.sequence_length": 2, "replay.batch_size": 128,
         "evaluation.every": 5000, "evaluation.episodes": 100, "checkpoint_every": 5000}

OVERRIDES = {
    "matrix": {"training_steps": 500, "system.learning_rate": 1e-3, "system.bc_learning_rate": 1e-3,
               "replay.sequence_length": 2, "replay.batch_size": 256, "evaluation.every": 500,
               "evaluation.episodes": 1000, "checkpoint_every": 500},
    "bridge": _GRID,
    "sensor": _GRID,
    "aloha": _GRID,
    "smac_v1": {"system.torso": "gru", "system.learning_rate": 3e-4, "system.bc_learning_rate": 3e-4,
                "system.threshold": 0.4, "system.logit_penalty": 0.0, "system.eval_mode": "greedy",
                "system.jit_compile": True, "replay.sequence_length": 20, "replay.batch_size": 32,
                "training_steps": 100_000, "evaluation.every": 5000, "evaluation.episodes": 32,
                "checkpoint_every": 5000},
}


def get_config(arg: str = ""):
    return build_config("bcq", dataclasses.asdict(BCQConfig()), OVERRIDES, arg)
