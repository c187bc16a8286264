"""CQL run config (algorithms.md 4.3): `get_config("env/scenario")`.

SMAC: OG-MARL's IQL+CQL yaml (GRU 64, Adam 3e-4, `cql_weight` 3.0, hard target copy
every 200 updates, 32 windows of 20, greedy). Small games (ours; CPA's Appendix B with
its values is unavailable): MLP 2x64, one-step transitions, Adam 1e-3, alpha 3 (the
OG-MARL weight; algorithms.md 4.3 suggests sweeping {0.5, 1, 3, 5}), greedy evaluation
as CPA Table 1 ("deterministic policies").

Bridge with `_GRID` (2x128, Adam 3e-4, 50 000 steps; `reproduce cpa-table1 --envs bridge
--systems bcq,cql`, 5 seeds, final greedy return, paper in brackets): Poor
-12.65 +- 5.69 (-18.52), Medium -12.65 +- 5.68 (-15.62), Good -8.74 +- 9.59 (-4.00). Each
seed ends in deadlock (-15.5), a crossing (-1.3) or, on Good, a detour (-24.4); the
evaluations flip between these as training goes on. Sensor, 5 seeds: Poor 25.44 +- 0.18
(0.54), Medium 26.95 +- 0.15 (0.12), Good 26.86 +- 0.35 (12.24), within 0.6 of our BC
(26.00, 26.61, 27.03) and at 24-28 from step 5 000 on. Aloha, 5 seeds: Poor 0.00 +- 0.00
(31.15), Medium 24.52 +- 0.33 (13.53), Good -2000.00 +- 0.00 (14.19). Each independent
Q_i(b_i, .) settles on one joint rule, the same on every seed: on Poor every agent waits;
on Medium only agents 0 and 9 (two neighbours each, not adjacent) transmit, with backlog
2-3 on every seed (and 1 on four), and never collide; on Good every agent ranks transmit
first for any backlog >= 1, so all ten transmit at every step and all 200 agent-steps
collide. In the vaults, agents with a packet transmit about half the time on all three,
but a transmission succeeds 30 % of the time on Poor, 55 % on Medium and 100 % on Good:
Good's behaviour policy took turns, and Q_i, which cannot see whose turn it is, learns
that transmitting always pays.
"""

import dataclasses

from og_marl_inspo.baselines.cql import CQLConfig
from og_marl_inspo.config import build_config

_GRID = {"training_steps": 50_000, "system.learning_rate": 3e-4, "system.hidden_sizes": (128, 128),
         "replay.sequence_length": 2, "replay.batch_size": 128, "evaluation.every": 5000,
         "evaluation.episodes": 100, "checkpoint_every": 5000}

OVERRIDES = {
    "matrix": {"training_steps": 500, "system.learning_rate": 1e-3, "replay.sequence_length": 2,
               "replay.batch_size": 256, "evaluation.every": 500, "evaluation.episodes": 1000,
               "checkpoint_every": 500},
    "bridge": _GRID,
    "sensor": _GRID,
    "aloha": _GRID,
    "smac_v1": {"system.torso": "gru", "system.learning_rate": 3e-4, "system.alpha": 3.0,
                "system.eval_mode": "greedy", "system.jit_compile": True,
                "replay.sequence_length": 20, "replay.batch_size": 32, "training_steps": 100_000,
                "evaluation.every": 5000, "evaluation.episodes": 32, "checkpoint_every": 5000},
}


def get_config(arg: str = ""):
    return build_config("cql", dataclasses.asdict(CQLConfig()), OVERRIDES, arg)
