"""In-memory replay over a vault read once: seeded windows of shape (B, T, N, ...).

Sampling follows flashbax 0.1.3 as OG-MARL uses it (og_marl_contract.md 4.3): B start
indices drawn uniformly from the `(L - T) // period + 1` valid starts of a random
add-batch row, T consecutive rows each. Windows cross episode boundaries freely;
systems reset recurrent state after terminal rows and cut bootstrapping with
(1 - terminal), as OG-MARL's do. Timeouts, which vaults record as terminals, also carry
a truncation once read (`populate_from_vault` with the environment). Transition
sampling is `sequence_length = 2`.

Draw k comes from `numpy.random.default_rng([seed, k])`, so a resumed run that sets
`samples_drawn` back to its checkpointed step sees exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from og_marl_inspo.data.vault import Experience, flag_time_limit_ends, read_vault


class ReplayBuffer:
    """`FlashbaxReplayBuffer`'s reading API (populate_from_vault, sample), in numpy."""

    def __init__(self, sequence_length: int, batch_size: int = 32, sample_period: int = 1,
                 seed: int = 42, experience: Optional[Experience] = None) -> None:
        if sequence_length < 1 or batch_size < 1 or sample_period < 1:
            raise ValueError("replay: sequence_length, batch_size and sample_period must be >= 1")
        self.sequence_length = sequence_length
        self.batch_size = batch_size
        self.sample_period = sample_period
        self.seed = seed
        self.samples_drawn = 0
        self.experience: Optional[Experience] = None
        if experience is not None:
            self.set_experience(experience)

    def populate_from_vault(self, source: str, env_name: str, scenario_name: str,
                            dataset_name: str, rel_dir: str = "vaults", environment=None) -> bool:
        """Read the vault once (validated against `environment` when given). With an
        environment that has an `episode_limit`, episodes of that length are flagged as
        timeouts (`flag_time_limit_ends`)."""
        experience = read_vault(rel_dir, source, env_name, scenario_name, dataset_name, environment)
        episode_limit = int(getattr(environment, "episode_limit", 0) or 0)
        if episode_limit > 0:
            experience = flag_time_limit_ends(experience, episode_limit)
        self.set_experience(experience)
        return True

    def set_experience(self, experience: Experience) -> None:
        length = experience["actions"].shape[1]
        if length < self.sequence_length:
            raise ValueError(f"replay.sequence_length {self.sequence_length} is longer than the "
                             f"dataset ({length} time steps)")
        self.experience = experience
        self.num_starts = (length - self.sequence_length) // self.sample_period + 1

    def sample(self) -> Experience:
        """One batch: every leaf (B, T, ...); advances `samples_drawn`."""
        if self.experience is None:
            raise RuntimeError("replay buffer is empty: call populate_from_vault first")
        rng = np.random.default_rng([self.seed, self.samples_drawn])
        self.samples_drawn += 1
        rows = rng.integers(0, self.experience["actions"].shape[0], size=self.batch_size)
        starts = rng.integers(0, self.num_starts, size=self.batch_size) * self.sample_period
        times = starts[:, None] + np.arange(self.sequence_length)[None, :]  # (B, T)
        return _gather(self.experience, rows[:, None], times)


def _gather(tree, rows, times):
    if isinstance(tree, dict):
        return {k: _gather(v, rows, times) for k, v in tree.items()}
    return tree[rows, times]
