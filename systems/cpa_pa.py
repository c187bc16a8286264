"""CPA-PA run config (algorithms.md 3.2-3.3): `get_config("env/scenario")`.

`training_steps` counts every `train_step` call: the first `system.ar_steps` train the
AR teacher (systems/cpa_ar.py's settings), the rest distil it into the action pool,
encoder, decoders and key prior. Deterministic mode by default (beta 1, pool size 1,
greedy: CPA Table 1); Figures 3-4 use `system.pool_size=32`,
`system.joint_decoding=repertoire`, smaller `system.beta` and `system.eval_mode=stochastic`
(figures.py). The matrix games get 3 000 distillation steps (ours): a diverse pool needs
them (300 sufficed for pool size 1, but 8 entries then still fell into 2 and mismatched).
`system.teacher_checkpoint` starts from a finished cpa_ar run (placeholders {dataset},
{seed}, ... are filled per run); its `ar_updates` then usually reach `ar_steps` already,
and every step of `training_steps` distils.
"""

import dataclasses

from og_marl_inspo.config import build_config
from og_marl_inspo.cpa import CPAPAConfig

OVERRIDES = {
    "matrix": {"system.advantages": "joint", "system.advantages_beta": 0.3,  # as cpa_ar's
               "system.ar_steps": 800, "training_steps": 3800, "evaluation.every": 400,
               "evaluation.episodes": 100, "checkpoint_every": 400},
    "bridge": {"system.ar_steps": 20_000, "training_steps": 25_000, "evaluation.every": 5000,
               "evaluation.episodes": 50, "checkpoint_every": 5000},
    # Sensor, 5 seeds, greedy, from cpa_ar's 10 000-step runs as `teacher_checkpoint` with
    # `--train-steps 5000`, i.e. the 5 000 distillation steps this entry gives without one:
    # Poor 29.54 / 29.02 / 29.30 / 29.31 / 29.68 = 29.37 (paper 28.39), Medium 30.32 / 30.47 /
    # 30.33 / 30.32 / 30.60 = 30.41 (28.71), Good 30.52 / 30.53 / 30.62 / 30.21 / 30.78 = 30.53
    # (29.22), 300-650 s a run, teacher agreement 0.99-1.00. From 5 000-step teachers: Poor
    # 27.38, Medium 29.71, Good 30.07.
    "sensor": {"system.bc_warmup_steps": 2000, "system.advantages": "joint",  # as cpa_ar's
               "system.advantages_beta": 3.0, "system.reward_scale": 0.1,
               "system.target_q_taken_beta": 1e4, "system.target_update_period": 50,
               "system.ar_steps": 10_000, "training_steps": 15_000, "evaluation.every": 5000,
               "evaluation.episodes": 50, "checkpoint_every": 5000},
    # Aloha, ours: the agents decode their parts of one joint action the teacher produced in
    # distillation (`joint_decoding=repertoire`), with one decoder MLP over [e', s, one-hot(i)]
    # (`decoder_layout=shared`). Only 6 % (Poor) to 10 % (Good) of the states the teacher visits
    # are in the dataset; off them each agent's own argmax (Eq. 12) often combined into neighbours
    # transmitting together (3-13 collisions an episode). Over the 15 teachers (5 seeds x Poor /
    # Medium / Good, 5 000 distillation steps, greedy): 78.63 / 84.35 / 82.15 at most 0.6
    # collisions an episode, where the independent argmax gave 44.8 / 16.1 / 31.6 with shared
    # decoders and -10.2 / 9.7 / 31.6 with Eq. 12's per-agent ones (paper 73.1 / 73.3 / 75.3;
    # the teachers 79.4 / 86.9 / 87.5). On Poor's 20 000 states the greedy teachers of seeds
    # 0 and 1 take 42 and 27 distinct joint actions.
    "aloha": {"system.decoder_layout": "shared", "system.joint_decoding": "repertoire",
              "system.advantages": "continuation", "system.reward_scale": 0.01,  # as cpa_ar's
              "system.target_q_taken_beta": 1e4, "system.target_update_period": 50,
              "system.ar_steps": 5000, "training_steps": 10_000, "evaluation.every": 5000,
              "evaluation.episodes": 50, "checkpoint_every": 5000},
}


def get_config(arg: str = ""):
    return build_config("cpa_pa", dataclasses.asdict(CPAPAConfig()), OVERRIDES, arg)
