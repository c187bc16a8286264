"""Dataset recipes: roll out behaviour policies into vaults (environments.md).

Each recipe builds one (source, env, scenario, uid) dataset from
`numpy.random.default_rng(seed)` (ours: seed 0, episodes shuffled before writing), so
the same command writes the same data. The recipe name, seed and counts go into the
vault metadata. Dataset cards in `datasets/` describe each recipe and its statistics.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from og_marl_inspo.data.vault import Experience, summary, write_vault
from og_marl_inspo.envs import get_environment
from og_marl_inspo.envs import aloha, bridge, sensor

DATASET_SEED = 0


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one dataset is made: `build(environment, rng) -> list of episodes`.

    An episode is a dict of per-step arrays: observations (T,N,O), actions (T,N),
    rewards (T,), legals (T,N,A), state (T,S); the last step is terminal.
    """

    description: str
    build: Callable[..., List[dict]]


def experience_from_episodes(episodes: Sequence[dict]) -> Experience:
    """Concatenate episodes along time into OG-MARL's experience dict (no add-batch axis)."""
    cat = {key: np.concatenate([ep[key] for ep in episodes]) for key in episodes[0]}
    length, n_agents = cat["actions"].shape
    terminals = np.zeros((length, n_agents), np.float32)
    ends = np.cumsum([len(ep["actions"]) for ep in episodes]) - 1
    terminals[ends] = 1.0
    return {
        "observations": cat["observations"],
        "actions": cat["actions"],
        "rewards": np.repeat(cat["rewards"][:, None], n_agents, axis=1),  # team reward per agent
        "terminals": terminals,
        "truncations": np.zeros((length, n_agents), np.float32),
        "infos": {"legals": cat["legals"], "state": cat["state"]},
    }


# ------------------------------------------------------------------ matrix games
def matrix_counts(counts: Dict[Tuple[int, ...], int]) -> Callable[..., List[dict]]:
    """Exact counts of one-step episodes per joint action, in shuffled order."""

    def build(environment, rng: np.random.Generator) -> List[dict]:
        joint = np.array([a for a, c in counts.items() for _ in range(c)], dtype=np.int32)
        joint = joint[rng.permutation(len(joint))]
        obs, legals, state = environment._reset()
        rewards = environment.payoff[tuple(joint.T)]
        return [{"observations": np.broadcast_to(obs, (len(joint),) + obs.shape),
                 "actions": joint, "rewards": rewards.astype(np.float32),
                 "legals": np.broadcast_to(legals, (len(joint),) + legals.shape),
                 "state": np.broadcast_to(state, (len(joint),) + state.shape)}]

    return build


def _one_step_episodes(block: List[dict]) -> List[dict]:
    """Split a block of one-step plays into single-step episodes (terminal every row)."""
    (b,) = block
    return [{k: v[t:t + 1] for k, v in b.items()} for t in range(len(b["actions"]))]


def _matrix(description: str, counts: Dict[Tuple[int, ...], int]) -> Recipe:
    build = matrix_counts(counts)
    return Recipe(description, lambda env, rng: _one_step_episodes(build(env, rng)))


def _product_counts(total: int, marginal: Sequence[float], n_agents: int = 2) -> Dict[tuple, int]:
    """Counts equal to `total` times the product distribution (exact integers)."""
    counts = {}
    for joint in itertools.product(range(len(marginal)), repeat=n_agents):
        value = total * np.prod([marginal[a] for a in joint])
        counts[joint] = int(round(value))
        if abs(value - counts[joint]) > 1e-6:
            raise ValueError(f"{total} x product distribution is not integral at {joint}")
    return counts


def _permutation_counts(n: int, per_permutation: int) -> Dict[tuple, int]:
    return {p: per_permutation for p in itertools.permutations(range(n))}


def _permutation_mix(expert_per_perm: int, random_rows: int) -> Recipe:
    """CPA template (ours): exact expert rows per permutation plus i.i.d. uniform rows."""

    def build(environment, rng):
        n = environment.num_agents
        rows = [p for p in itertools.permutations(range(n)) for _ in range(expert_per_perm)]
        rows += [tuple(x) for x in rng.integers(0, n, size=(random_rows, n))]
        counts: Dict[tuple, int] = {}
        for r in rows:
            counts[r] = counts.get(r, 0) + 1
        return _one_step_episodes(matrix_counts(counts)(environment, rng))

    return Recipe(f"{expert_per_perm} rows per permutation (x24) + {random_rows} uniform random rows",
                  build)


def _cpa_template(expert_and_random, expert_a: str, expert_b: str, random_name: str,
                  episodes: int = 1000) -> Dict[str, Recipe]:
    """CPA's Good / Medium / Poor (ours, environments.md 1.3): 100 %, 50 % and 20 % expert
    episodes (half each expert convention), the rest random."""
    recipes = {}
    for uid, share in (("Good", 1.0), ("Medium", 0.5), ("Poor", 0.2)):
        expert = int(round(episodes * share))
        recipes[uid] = Recipe(f"{expert // 2} expert {expert_a} + {expert // 2} expert {expert_b} + "
                              f"{episodes - expert} {random_name} episodes",
                              expert_and_random(expert, episodes - expert))
    return recipes


_XOR_SUPPORTS = {  # (inspo uid, cpa uid): joint-action counts, 6000 one-step episodes
    ("A", "AB+BA"): {(0, 1): 3000, (1, 0): 3000},
    ("B", "AA+AB+BA"): {(0, 0): 2000, (0, 1): 2000, (1, 0): 2000},
    ("C", "Complete"): {(0, 0): 1500, (0, 1): 1500, (1, 0): 1500, (1, 1): 1500},
}

RECIPES: Dict[Tuple[str, str, str], Dict[str, Recipe]] = {
    ("inspo", "matrix", "xor"): {
        uid: _matrix(f"equal mix of {sorted(c)}, 6000 one-step episodes", c)
        for (uid, _), c in _XOR_SUPPORTS.items()},
    ("cpa", "matrix", "xor"): {
        uid: _matrix(f"equal mix of {sorted(c)}, 6000 one-step episodes", c)
        for (_, uid), c in _XOR_SUPPORTS.items()},
    ("inspo", "matrix", "m_ne"): {
        "Balanced": _matrix("independent agents, mu = (1/3, 1/3, 1/3), 9000 episodes",
                            _product_counts(9000, [1 / 3, 1 / 3, 1 / 3])),
        "Imbalanced": _matrix("independent agents, mu = (0.8, 0.1, 0.1), 9000 episodes",
                              _product_counts(9000, [0.8, 0.1, 0.1])),
    },
    ("cpa", "matrix", "permutation"): {
        "Good": _permutation_mix(400, 0),
        "Medium": _permutation_mix(200, 4800),
        "Poor": _permutation_mix(80, 7680),
    },
    ("inspo", "bridge", "bridge"): {
        "Optimal": Recipe("500 Optimal episodes", bridge.optimal_and_random(500, 0)),
        "Mixed": Recipe("500 Optimal + 500 uniform random episodes", bridge.optimal_and_random(500, 500)),
    },
    ("cpa", "bridge", "bridge"): {
        "Good": Recipe("500 Optimal episodes", bridge.optimal_and_random(500, 0)),
        "Medium": Recipe("500 Optimal + 500 uniform random episodes", bridge.optimal_and_random(500, 500)),
        "Poor": Recipe("200 Optimal + 800 uniform random episodes", bridge.optimal_and_random(200, 800)),
    },
    ("cpa", "aloha", "aloha"): _cpa_template(aloha.expert_and_random, "E", "O",
                                             "random (transmit w.p. 1/2)"),
    ("cpa", "sensor", "sensor"): _cpa_template(sensor.expert_and_random, "L", "H",
                                               "uniform-legal random"),
}


def register_recipes(source: str, env: str, scenario: str, recipes: Dict[str, Recipe]) -> None:
    """Add the datasets of another game (grid games, SMAX)."""
    RECIPES[(source, env, scenario)] = recipes


def build_datasets(source: str, env: str, scenario: str, uids: Optional[Sequence[str]] = None,
                   rel_dir: str = "vaults", seed: int = DATASET_SEED) -> Dict[str, dict]:
    """Build the named datasets (all of the scenario's by default); return their summaries."""
    recipes = RECIPES.get((source, env, scenario))
    if recipes is None:
        known = ", ".join("/".join(k) for k in sorted(RECIPES))
        raise ValueError(f"no dataset recipe for {source}/{env}/{scenario}; known: {known}")
    uids = list(uids) if uids else list(recipes)
    unknown = [u for u in uids if u not in recipes]
    if unknown:
        raise ValueError(f"unknown dataset {unknown[0]!r} for {source}/{env}/{scenario}; "
                         f"recipes: {', '.join(recipes)}")
    environment = get_environment(source, env, scenario, seed=seed)
    summaries = {}
    for uid in uids:
        rng = np.random.default_rng([seed, _uid_key(uid)])
        episodes = recipes[uid].build(environment, rng)
        order = rng.permutation(len(episodes))
        experience = experience_from_episodes([episodes[i] for i in order])
        stats = summary({k: (v[None] if not isinstance(v, dict) else {kk: vv[None] for kk, vv in v.items()})
                         for k, v in experience.items()})
        metadata = {"recipe": f"{source}/{env}/{scenario}/{uid}", "description": recipes[uid].description,
                    "seed": seed, **stats}
        write_vault(experience, rel_dir, source, env, scenario, uid, metadata)
        summaries[uid] = stats
    return summaries


def _uid_key(uid: str) -> int:
    """A stable integer per uid so each dataset has its own random stream."""
    return int.from_bytes(uid.encode(), "little") % (2**32)
