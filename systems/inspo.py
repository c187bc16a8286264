"""InSPO run config (algorithms.md 2.6): `get_config("env/scenario")`.

`training_steps` counts every `train_step` call: the first `system.bc_steps` fit the
behaviour policy mu (and let the critics evaluate it), the rest are InSPO steps of
`system.inner_steps` critic+actor updates per agent turn.

Matrix games (ours, measured): MLP 2x64, 256 one-step transitions per batch, alpha 0.1,
Adam 1e-2, 150 BC steps then InSPO steps of 10 inner steps per agent turn (Alg. 1
optimises each agent fully in its turn), stochastic evaluation.
XOR: beta 0.01 (beta 0.1 leaves ~0.5% on the wrong action: return 0.98); 150 BC steps,
then 150 InSPO steps of 40 critic and 40 actor steps per agent turn on one resampled D_rho
(`resample=per_turn`), momentum-free Adam (beta1 0) and self-normalised Eq. 13 weights, so
that each turn is close to Alg. 1's full fit, and batches of 64. Dataset (a) pays 1 for
every row: a local critic sees no advantage, and coordination comes only from the
resampled marginals drifting into a corner (algorithms.md 2.9), a drift whose step is one
resample of 64 rows per turn. Near a corner, a turn whose resample holds none of the
partner's rare rows must sharpen the policy further than a turn holding one can undo, or
the corner leaks: a short-memory policy Adam (beta2 0.9) keeps those steps full-sized
(with 0.999, 1 seed in 5 reached 0.98 and fell back to 0.13). Measured, 5 seeds: (a), (b)
and (c) 1.00; w/o SPO on (b) 0.18 +- 0.22 (both agents flip together between (A,A) and
(B,B)), and -1.78 with `simultaneous_ratio=behaviour` (both on B). The earlier settings
(a fresh resample per inner step, Adam with momentum, unnormalised weights: turns that
fall short of a full fit) gave (a) 0.95 +- 0.05, and w/o SPO coordinated.
M-NE: beta 10 for 40 InSPO steps (enough to leave (A,A) from the imbalanced mu; 5 is not
without luck), annealed to 0.5 over 20 steps so the final policy is sharp (a constant
beta 5 ends at 19.93), and a short-memory policy Adam (beta2 0.9) so the second agent
sharpens on the 1% of (C,C) rows in time.
SMAC: GRU policies, MLP 2x256 critics on [s, o_i, id], auto alpha, greedy, XLA.
SMAX stand-in ("smax", on top of "smac_v1": the SMAX launcher passes `smac_v1/smax/MAP`):
SMAX's returns lie in [0, 2] where SMAC's lie in [0, 20], so alpha is fixed at a tenth of
SMAC's best fixed value (10); the ratio clip rho_max 2 and a policy Adam of 3e-5 keep the
resampled data broad and pi near mu. Measured on 5m_vs_6m Expert, seed 0, 1000 BC steps
(mu returns 0.56 over 320 greedy episodes) then 500 InSPO steps: with the smac_v1 settings
alone the effective sample size of D_rho fell from 0.99 to 0.05 within 100 steps (under 1 %
of rows, at the clip 100, hold about half the mass) and the joint KL to mu passed 1.2 (return 0.35
after 1000 InSPO steps); alpha 1 alone kept the critic's values in range but not the ESS
(return 0.35); alpha 1 with rho_max 2 kept the ESS at 0.85 but pi still drifted (KL 0.5,
return 0.29); with all three the ESS stayed at 0.90, the KL at 0.09, and the return rose to 0.81.

The run config holds `system.alpha` as text ("0.1" or "auto") so that the command line
can switch between a number and "auto" (`--config.system.alpha=auto`).
"""

import dataclasses

from og_marl_inspo.config import build_config
from og_marl_inspo.inspo import InSPOConfig

_MATRIX = {"system.alpha": "0.1", "system.policy_lr": 1e-2, "system.critic_lr": 1e-2,
           "system.bc_lr": 5e-3, "system.bc_steps": 150, "system.inner_steps": 10,
           "system.eval_mode": "stochastic", "replay.sequence_length": 2, "replay.batch_size": 256,
           "evaluation.every": 50, "evaluation.episodes": 1000, "checkpoint_every": 100}

OVERRIDES = {
    "matrix": _MATRIX,
    "xor": {"training_steps": 300, "system.beta": 0.01, "replay.batch_size": 64,
            "system.inner_steps": 40, "system.resample": "per_turn", "system.normalize_weights": True,
            "system.policy_adam_beta1": 0.0, "system.policy_adam_beta2": 0.9,
            "system.critic_adam_beta1": 0.0, "system.jit_compile": True},
    "m_ne": {"training_steps": 250, "system.beta": 10.0, "system.beta_final": 0.5,
             "system.beta_anneal_start": 40, "system.beta_anneal_steps": 20,
             "system.policy_adam_beta2": 0.9},
    "bridge": {"training_steps": 200_000, "system.alpha": "0.1", "system.beta": 0.1,
               "system.hidden_sizes": (128, 128), "system.critic_hidden_sizes": (128, 128),
               "system.policy_lr": 3e-4, "system.critic_lr": 3e-4, "system.bc_lr": 3e-4,
               "system.bc_steps": 20_000, "system.eval_mode": "stochastic",
               "replay.sequence_length": 2, "replay.batch_size": 128,
               "evaluation.every": 10_000, "evaluation.episodes": 100, "checkpoint_every": 10_000},
    "smac_v1": {"training_steps": 100_000, "system.torso": "gru", "system.alpha": "auto",
                "system.beta": 0.1, "system.target_kl_per_agent": 0.1,
                "system.critic_hidden_sizes": (256, 256), "system.policy_lr": 3e-4,
                "system.critic_lr": 3e-4, "system.bc_lr": 3e-4, "system.bc_steps": 20_000,
                "system.eval_mode": "greedy", "system.jit_compile": True,
                "replay.sequence_length": 20, "replay.batch_size": 32,
                "evaluation.every": 5000, "evaluation.episodes": 32, "checkpoint_every": 5000},
    "smax": {"system.alpha": "1.0", "system.rho_max": 2.0, "system.policy_lr": 3e-5},
}


def get_config(arg: str = ""):
    defaults = dataclasses.asdict(InSPOConfig())
    defaults["alpha"] = str(defaults["alpha"])  # text: a number or "auto"
    return build_config("inspo", defaults, OVERRIDES, arg)
