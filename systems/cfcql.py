"""CFCQL run config (algorithms.md 4.6): `get_config("env/scenario[/dataset]")`.

SMAC: the CFCQL repository's `cql_qmix.yaml` (GRU 64, QMIX 32/64, Adam 1e-3, TD(lambda)
0.6, 0.3 on 6h_vs_8z, hard target copy every 200, greedy) and its README's per-dataset
(alpha, softmax temperature); a map alone gets its Medium pair, `smac_v1/<map>/<Dataset>`
the dataset's. Batches of 128 windows of 20 steps (ours: the repository samples 128
whole episodes).

Small games (ours; InSPO's CFCQL settings sit in its unavailable Appendix C): MLP 2x64
on the observation (= the state in these games), one-step targets (`td_lambda: 0`),
alpha 1 from the {0.1, 1, 10} sweep of algorithms.md 4.6, softmax temperature 1, beta
trained for 100 (matrix, of 500 steps) or 5000 (grid) steps first.

Bridge, InSPO Table 3 (`reproduce inspo-table3 --envs bridge --systems cfcql`, 5 seeds,
sampled evaluation, paper in brackets): Optimal -5.01 +- 0.82 (-12.75), Mixed -11.35 +- 2.83
(-13.79). Optimal climbs through the evaluations (-15.7 to -18.3 at step 5 000, -4.3 to -6.3 at the
end) as the sampled softmax(Q) sharpens; on Mixed one seed of five deadlocks at the bridge (-15.50).
"""

import dataclasses

from og_marl_inspo.baselines.cfcql import CFCQLConfig
from og_marl_inspo.config import apply, build_config

_GRID = {"training_steps": 50_000, "system.learning_rate": 3e-4, "system.bc_learning_rate": 3e-4,
         "system.hidden_sizes": (128, 128), "system.td_lambda": 0.0, "system.alpha": 1.0,
         "system.softmax_temp": 1.0, "system.bc_steps": 5000, "replay.sequence_length": 2,
         "replay.batch_size": 128, "evaluation.every": 5000, "evaluation.episodes": 100,
         "checkpoint_every": 5000}

# CFCQL discrete/README.md: (alpha, softmax_temp) per map and dataset; 100 = one-hot argmax.
SMAC_SETTINGS = {
    "2s3z": {"Medium": (0.1, 0.5), "Medium-Replay": (5.0, 0.1), "Expert": (50.0, 0.5), "Mixed": (0.5, 0.0)},
    "3s_vs_5z": {"Medium": (50.0, 0.0), "Medium-Replay": (50.0, 0.0), "Expert": (50.0, 1.0),
                 "Mixed": (50.0, 0.0)},
    "5m_vs_6m": {"Medium": (50.0, 0.5), "Medium-Replay": (50.0, 0.5), "Expert": (50.0, 100.0),
                 "Mixed": (50.0, 0.5)},
    "6h_vs_8z": {"Medium": (50.0, 1.0), "Medium-Replay": (50.0, 0.5), "Expert": (50.0, 0.0),
                 "Mixed": (50.0, 1.0)},
}


def _smac(alpha_temp):
    alpha, temp = alpha_temp
    return {"system.alpha": alpha, "system.softmax_temp": temp}


OVERRIDES = {
    "matrix": {"training_steps": 500, "system.learning_rate": 1e-3, "system.bc_learning_rate": 1e-3,
               "system.td_lambda": 0.0, "system.alpha": 1.0, "system.softmax_temp": 1.0,
               "system.bc_steps": 100, "replay.sequence_length": 2, "replay.batch_size": 256,
               "evaluation.every": 500, "evaluation.episodes": 1000, "checkpoint_every": 500},
    "bridge": _GRID,
    "sensor": _GRID,
    "aloha": _GRID,
    "smac_v1": {"system.torso": "gru", "system.learning_rate": 1e-3, "system.bc_learning_rate": 1e-3,
                "system.td_lambda": 0.6, "system.bc_steps": 5000, "system.eval_mode": "greedy",
                "system.jit_compile": True, "replay.sequence_length": 20, "replay.batch_size": 128,
                "training_steps": 100_000, "evaluation.every": 5000, "evaluation.episodes": 32,
                "checkpoint_every": 5000},
    **{scenario: _smac(by_dataset["Medium"]) for scenario, by_dataset in SMAC_SETTINGS.items()},
}
OVERRIDES["6h_vs_8z"] = {**OVERRIDES["6h_vs_8z"], "system.td_lambda": 0.3}


def get_config(arg: str = ""):
    parts = [part for part in arg.split("/") if part]
    config = build_config("cfcql", dataclasses.asdict(CFCQLConfig()), OVERRIDES, "/".join(parts[:2]))
    if len(parts) == 3 and parts[1] in SMAC_SETTINGS:
        with config.unlocked():
            apply(config, _smac(SMAC_SETTINGS[parts[1]][parts[2]]))
    return config
