"""Dataset recipes: roll out behaviour policies into vaults (environments.md).

Each recipe builds one (source, env, scenario, uid) dataset from
`numpy.random.default_rng(seed)` (ours: seed 0, episodes shuffled before writing), so
the same command writes the same data. The recipe name, seed and counts go into the
vault metadata. Dataset cards in `datasets/` describe each recipe and its statistics.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from og_marl_inspo.data.vault import Experience, summary, write_vault
from og_marl_inspo.envs import get_environment
from og_marl_inspo.envs import aloha, bridge, sensor
from og_marl_inspo.envs.smax import SMAX_SCENARIOS

DATASET_SEED = 0


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one dataset is made: `build(environment, rng) -> list of episodes`.

    An episode is a dict of per-step arrays: observations (T,N,O), actions (T,N),
    rewards (T,), legals (T,N,A), state (T,S); the last step is terminal.
    """

    description: str
    build: Callable[..., List[dict]]


EPISODE_FIELDS = ("observations", "actions", "rewards", "legals", "state")


def experience_from_episodes(episodes: Sequence[dict]) -> Experience:
    """Concatenate episodes along time into OG-MARL's experience dict (no add-batch axis).
    Keys other than the five recorded fields (e.g. an episode's `won`) are left out."""
    cat = {key: np.concatenate([ep[key] for ep in episodes]) for key in EPISODE_FIELDS}
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


# ------------------------------------------------------------------------ SMAX
# CFCQL's recipe (environments.md section 5) over a stand-in learner (ours): instead of
# training MAPPO/QMIX, the "checkpoints" are the scripted focus-fire policy of
# envs/smax.py with epsilon-uniform exploration annealed from 1 to 0.
SMAX_EPISODES = 5000  # CFCQL's count (5m_vs_6m: ~13k transitions, ~4 MB per 1000 episodes)
SMAX_EPSILONS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)  # ours: checkpoints
SMAX_EVAL_EPISODES = 200  # episodes per checkpoint evaluation (the recipe asks >= 100)
SMAX_MEDIUM_RATIO = 0.6   # Medium: earliest checkpoint with >= 60 % of the expert's return


@functools.lru_cache(maxsize=None)
def smax_checkpoints(scenario: str) -> Tuple[Tuple[float, float, float], ...]:
    """(epsilon, mean return, win rate) of every stand-in checkpoint, in training order."""
    from og_marl_inspo.envs import smax

    return tuple((eps, *smax.episode_stats(smax.rollout(scenario, SMAX_EVAL_EPISODES, eps,
                                                        seed=1000 + k)))
                 for k, eps in enumerate(SMAX_EPSILONS))


def smax_plan(scenario: str) -> Dict[str, object]:
    """Expert = best checkpoint; Medium = earliest reaching the ratio of its return;
    Medium-Replay = the checkpoints before Medium (the learner's replay up to it)."""
    points = smax_checkpoints(scenario)
    best = max(range(len(points)), key=lambda k: points[k][1])
    medium = next(k for k, p in enumerate(points) if p[1] >= SMAX_MEDIUM_RATIO * points[best][1])
    return {"Expert": points[best][0], "Medium": points[medium][0],
            "Medium-Replay": [p[0] for p in points[:max(medium, 1)]], "checkpoints": points}


@functools.lru_cache(maxsize=None)
def _smax_episodes(scenario: str, uid: str) -> Tuple[dict, ...]:
    """The episodes of Expert, Medium or Medium-Replay (fixed seeds, so Mixed reuses them)."""
    from og_marl_inspo.envs import smax

    plan = smax_plan(scenario)
    if uid in ("Expert", "Medium"):  # ours: with the checkpoint's epsilon (CFCQL: greedy)
        episodes = smax.rollout(scenario, SMAX_EPISODES, plan[uid], seed=1 if uid == "Expert" else 2)
    else:  # the replay: equal shares of every checkpoint before Medium, oldest first
        share = -(-SMAX_EPISODES // len(plan[uid]))
        episodes = [ep for k, eps in enumerate(plan[uid])
                    for ep in smax.rollout(scenario, share, eps, seed=3 + k)][-SMAX_EPISODES:]
    return tuple(episodes)


def _smax_mixed(scenario: str) -> Callable[..., List[dict]]:
    def build(environment, rng):  # CFCQL's tools/mixed.py: the same indices of both
        index = rng.choice(SMAX_EPISODES, SMAX_EPISODES // 2, replace=False)
        medium, expert = _smax_episodes(scenario, "Medium"), _smax_episodes(scenario, "Expert")
        return [medium[i] for i in index] + [expert[i] for i in index]

    return build


def smax_recipes(scenario: str) -> Dict[str, Recipe]:
    """Expert / Medium / Medium-Replay / Mixed of one SMAX map."""
    half = SMAX_EPISODES // 2
    recipes = {uid: Recipe(f"{SMAX_EPISODES} episodes: {text}",
                           lambda env, rng, uid=uid: list(_smax_episodes(scenario, uid)))
               for uid, text in (("Expert", "the best focus-fire checkpoint"),
                                 ("Medium", "the earliest checkpoint reaching "
                                            f"{SMAX_MEDIUM_RATIO:.0%} of the expert's return"),
                                 ("Medium-Replay", "the checkpoints before Medium, equal shares"))}
    recipes["Mixed"] = Recipe(f"{half} Medium + the same {half} indices of Expert",
                              _smax_mixed(scenario))
    return recipes


for _scenario in SMAX_SCENARIOS:
    RECIPES[("inspo", "smax", _scenario)] = smax_recipes(_scenario)


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
        episodes = [episodes[i] for i in rng.permutation(len(episodes))]
        experience = experience_from_episodes(episodes)
        stats = summary({k: (v[None] if not isinstance(v, dict) else {kk: vv[None] for kk, vv in v.items()})
                         for k, v in experience.items()})
        if all("won" in ep for ep in episodes):  # games with a winner (SMAX): the data's win rate
            stats["win_rate"] = float(np.mean([ep["won"] for ep in episodes]))
        metadata = {"recipe": f"{source}/{env}/{scenario}/{uid}", "description": recipes[uid].description,
                    "seed": seed, **stats}
        write_vault(experience, rel_dir, source, env, scenario, uid, metadata)
        summaries[uid] = stats
    return summaries


def _uid_key(uid: str) -> int:
    """A stable integer per uid so each dataset has its own random stream."""
    return int.from_bytes(uid.encode(), "little") % (2**32)
