"""Systems by name: `get_system(name, environment, logger, **kwargs)` (OG-MARL v1's call).

Built-in systems are listed here and imported lazily (TensorFlow loads only when a
system is built). Other packages add systems without editing this one through the
entry-point group `og_marl.systems`:

    [project.entry-points."og_marl.systems"]
    my_system = "my_package.module:MySystem"

or at run time with `register(name, factory)`. A system class may carry a `Config`
dataclass; its fields are the run config's `system` block.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Callable, Dict, List, Optional

ENTRY_POINT_GROUP = "og_marl.systems"

_BUILTIN: Dict[str, str] = {
    "bc": "og_marl_inspo.baselines.bc:BCSystem",
    "bcq": "og_marl_inspo.baselines.bcq:BCQSystem",
    "cql": "og_marl_inspo.baselines.cql:CQLSystem",
    "cfcql": "og_marl_inspo.baselines.cfcql:CFCQLSystem",
    "inspo": "og_marl_inspo.inspo:InSPOSystem",
    "maicq": "og_marl_inspo.baselines.maicq:MAICQSystem",
    "cpa_ar": "og_marl_inspo.cpa:CPAARSystem",
    "cpa_pa": "og_marl_inspo.cpa:CPAPASystem",
    "omar": "og_marl_inspo.baselines.omar:OMARSystem",
    "omiga": "og_marl_inspo.baselines.omiga:OMIGASystem",
    "alberdice": "og_marl_inspo.baselines.alberdice:AlberDICESystem",
}

_REGISTERED: Dict[str, Any] = {}  # name -> factory or "module:attr" string


def register(name: str, factory: Callable[..., Any] | str) -> None:
    """Make `factory(environment, logger, **kwargs)` available as `name`."""
    _REGISTERED[name] = factory


def _entry_points() -> Dict[str, Any]:
    try:
        found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python < 3.10 signature; kept for safety
        found = metadata.entry_points().get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in found}


def _table() -> Dict[str, Any]:
    table: Dict[str, Any] = dict(_BUILTIN)
    table.update(_entry_points())
    table.update(_REGISTERED)
    return table


def list_systems() -> List[str]:
    """Every system name: built-in, from entry points, and registered at run time."""
    return sorted(_table())


def _resolve(name: str):
    table = _table()
    if name not in table:
        raise ValueError(f"unknown system {name!r}; registered: {', '.join(sorted(table))}")
    target = table[name]
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
    if isinstance(target, metadata.EntryPoint):
        return target.load()
    return target


def is_builtin(name: str) -> bool:
    """Whether `name` is one of this package's systems (each has a `systems/<name>.py`)."""
    return name in _BUILTIN


def system_class(name: str):
    """The class (or factory) registered as `name`, unbuilt: for its class attributes."""
    return _resolve(name)


def get_system(name: str, environment, logger=None, **kwargs):
    """Build system `name` for `environment`; kwargs are its `system` config fields."""
    return _resolve(name)(environment, logger, **kwargs)


def system_config_class(name: str) -> Optional[type]:
    """The `Config` dataclass of a system, or None when it has none."""
    return getattr(_resolve(name), "Config", None)
