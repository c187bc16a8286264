"""`get_environment(source, env_name, scenario, seed=42)`, OG-MARL's signature.

The (source, env_name) pair picks the game variant, as in OG-MARL: e.g. XOR pays -2
on (B,B) for `inspo` and 0 for `cpa` (environments.md section 1.1). Names this
package does not own fall through to OG-MARL's own `get_environment` when OG-MARL is
importable; otherwise a ValueError lists the known triples.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

from og_marl_inspo.envs.base import BatchEnv, Environment
from og_marl_inspo.envs import aloha, bridge, matrix, sensor

# (source, env_name, scenario) -> factory(seed) -> Environment
_ENVIRONMENTS: Dict[Tuple[str, str, str], Callable[[int], Environment]] = {
    ("inspo", "matrix", "xor"): lambda seed: matrix.MatrixGame(matrix.xor_payoff(-2.0), seed),
    ("cpa", "matrix", "xor"): lambda seed: matrix.MatrixGame(matrix.xor_payoff(0.0), seed),
    ("inspo", "matrix", "m_ne"): lambda seed: matrix.MatrixGame(matrix.m_ne_payoff(), seed),
    ("cpa", "matrix", "permutation"): lambda seed: matrix.MatrixGame(matrix.permutation_payoff(4), seed),
    ("inspo", "bridge", "bridge"): lambda seed: bridge.Bridge(seed),
    ("cpa", "bridge", "bridge"): lambda seed: bridge.Bridge(seed),
    ("alberdice", "bridge", "bridge"): lambda seed: bridge.Bridge(seed),
    ("cpa", "sensor", "sensor"): lambda seed: sensor.Sensor(seed),
    ("cpa", "aloha", "aloha"): lambda seed: aloha.Aloha(seed),
}


def register_environment(source: str, env_name: str, scenario: str,
                         factory: Callable[[int], Environment]) -> None:
    """Add a game to `get_environment` (used by the grid and SMAC modules)."""
    _ENVIRONMENTS[(source, env_name, scenario)] = factory


def known_environments() -> List[Tuple[str, str, str]]:
    """Every (source, env_name, scenario) this package can build, sorted."""
    return sorted(_ENVIRONMENTS)


def get_environment(source: str, env_name: str, scenario: str, seed: int = 42):
    """Build the wrapper for (source, env_name, scenario), seeded."""
    factory = _ENVIRONMENTS.get((source, env_name, scenario))
    if factory is not None:
        return factory(seed)
    # SMAC v1 needs StarCraft II, so its maps stay out of _ENVIRONMENTS (and of
    # known_environments()); smac itself is imported only when a game is built.
    from og_marl_inspo.envs.smac import SMAC_V1_SCENARIOS, make_smac_v1

    if env_name == "smac_v1" and scenario in SMAC_V1_SCENARIOS.get(source, ()):
        return make_smac_v1(source, scenario, seed)
    # SMAX needs jaxmarl (an optional extra): routed the same way, imported when built.
    from og_marl_inspo.envs.smax import SMAX_SCENARIOS, make_smax

    if source == "inspo" and env_name == "smax" and scenario in SMAX_SCENARIOS:
        return make_smax(source, scenario, seed)
    try:
        from og_marl.environments import get_environment as og_marl_get_environment
    except ImportError:
        og_marl_get_environment = None
    if og_marl_get_environment is not None:
        return og_marl_get_environment(source, env_name, scenario, seed=seed)
    known = ", ".join("/".join(t) for t in known_environments())
    raise ValueError(
        f"unknown environment {source}/{env_name}/{scenario} (OG-MARL is not installed); "
        f"known source/env/scenario: {known}")


__all__ = ["BatchEnv", "Environment", "get_environment", "known_environments",
           "register_environment"]
