"""Run configs: ml-collections `ConfigDict`s with OG-MARL's blocks, and their validation.

A run config mirrors OG-MARL's hydra keys so a run reads the same in both tools:

    system_name, seed, training_steps
    task:       source, env, scenario, dataset, rel_dir
    replay:     sequence_length, sample_period, batch_size
    evaluation: every, episodes, final_multiplier (the final evaluation runs
                `final_multiplier` x `episodes`, OG-MARL's "absolute metric")
    checkpoint_every
    system:     the system's own fields (its `Config` dataclass, validated)

`systems/<name>.py` files hold each system's published settings and per-task
overrides; `build_config` is what their `get_config(arg)` calls. Configs are locked:
setting a misspelt field fails with the list of fields.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from pathlib import Path
from typing import Any, Iterable, Mapping

import ml_collections

from og_marl_inspo.errors import ConfigError

# Where `systems/<name>.py` is found: inside the package for a wheel or a non-editable
# install (pyproject maps systems/ to og_marl_inspo/systems), else the repository's systems/.
_PACKAGE_DIR = Path(__file__).resolve().parent
SYSTEMS_DIRS = (_PACKAGE_DIR / "systems", _PACKAGE_DIR.parent / "systems")


def build_config(system_name: str, system_defaults: Mapping[str, Any],
                 overrides: Mapping[str, Mapping[str, Any]] = (), arg: str = "") -> ml_collections.ConfigDict:
    """The full run config of a system, with the task overrides `arg` selects.

    `arg` is "env" or "env/scenario"; `overrides[env]` is applied, then
    `overrides[scenario]`, each a dict of dotted keys (e.g. {"system.beta": 5.0}).
    """
    config = ml_collections.ConfigDict({
        "system_name": system_name,
        "seed": 0,
        "training_steps": 5000,
        "task": {"source": "inspo", "env": "matrix", "scenario": "xor", "dataset": "B",
                 "rel_dir": "vaults"},
        "replay": {"sequence_length": 2, "sample_period": 1, "batch_size": 256},
        "evaluation": {"every": 1000, "episodes": 1000, "final_multiplier": 10},
        "checkpoint_every": 1000,
        "system": dict(system_defaults),
    })
    overrides = dict(overrides)
    for key in [part for part in arg.split("/") if part]:
        apply(config, overrides.get(key, {}))
    config.lock()
    return config


def apply(config: ml_collections.ConfigDict, values: Mapping[str, Any]) -> None:
    """Set dotted keys ("system.alpha") on a config, refusing unknown fields."""
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            if part not in node:
                raise ConfigError(f"unknown config field {dotted!r}")
            node = node[part]
        if leaf not in node:
            raise ConfigError(f"unknown config field {dotted!r}; fields here: "
                              f"{', '.join(sorted(node.keys()))}")
        node[leaf] = value


def parse_value(text: str, current: Any) -> Any:
    """Parse a command-line value to the type of the field it replaces."""
    if isinstance(current, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"expected true or false, got {text!r}")
    if isinstance(current, int):
        return int(float(text)) if "e" in text.lower() else int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_cli_overrides(config: ml_collections.ConfigDict, items: Iterable[str]) -> None:
    """Apply `--config.system.alpha=5` style overrides (the part after `--config.`)."""
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected FIELD=VALUE")
        dotted, text = item.split("=", 1)
        node = config
        *parents, leaf = dotted.split(".")
        try:
            for part in parents:
                node = node[part]
            current = node[leaf]
        except (KeyError, AttributeError, TypeError):
            raise ConfigError(f"unknown config field {dotted!r}") from None
        try:
            value = parse_value(text, current)
        except (ValueError, ConfigError) as err:
            raise ConfigError(f"config field {dotted}: {err}") from None
        with config.unlocked():
            apply(config, {dotted: value})


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """Load `path.py[:arg]` and call its `get_config(arg)` (absl's config-file syntax)."""
    path, _, arg = spec.partition(":")
    if not Path(path).is_file():
        raise ConfigError(f"config file {path} not found")
    module_spec = importlib.util.spec_from_file_location(f"_og_marl_inspo_cfg_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def default_config(system_name: str, env: str = "", scenario: str = "") -> ml_collections.ConfigDict:
    """`systems/<name>.py:<env>/<scenario>`; a system from another package that has no
    such file gets its dataclass defaults. A built-in system without its file is refused:
    its dataclass defaults are not its published settings."""
    from og_marl_inspo.registry import is_builtin, system_config_class

    for directory in SYSTEMS_DIRS:
        path = directory / f"{system_name}.py"
        if path.is_file():
            return load_config_file(f"{path}:{env}/{scenario}")
    if is_builtin(system_name):
        raise ConfigError(f"systems/{system_name}.py, the published config of {system_name}, is not "
                          f"installed (looked in {', '.join(str(d) for d in SYSTEMS_DIRS)}); reinstall "
                          f"og-marl-inspo from its repository or pass --config path/to/{system_name}.py")
    config_cls = system_config_class(system_name)
    defaults = dataclasses.asdict(config_cls()) if config_cls else {}
    return build_config(system_name, defaults)


def validate_run(config: ml_collections.ConfigDict) -> None:
    """Checks on the shared blocks (the system block is validated by its dataclass)."""
    checks = [("training_steps", config.training_steps >= 0, "must be >= 0"),
              ("replay.sequence_length", config.replay.sequence_length >= 1, "must be >= 1"),
              ("replay.batch_size", config.replay.batch_size >= 1, "must be >= 1"),
              ("replay.sample_period", config.replay.sample_period >= 1, "must be >= 1"),
              ("evaluation.episodes", config.evaluation.episodes >= 1, "must be >= 1"),
              ("evaluation.every", config.evaluation.every >= 1, "must be >= 1"),
              ("evaluation.final_multiplier", config.evaluation.final_multiplier >= 1, "must be >= 1"),
              ("checkpoint_every", config.checkpoint_every >= 1, "must be >= 1")]
    for field, ok, message in checks:
        if not ok:
            raise ConfigError(f"config field {field}: {message}, got {_get(config, field)!r}")


RUN_PLACEHOLDERS = ("source", "env", "scenario", "dataset", "seed")


def fill_run_placeholders(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy in which the system block's string fields have their {source}, {env},
    {scenario}, {dataset} and {seed} filled from the run, so one sweep override can point
    every run at its own file (e.g. CPA-PA's `teacher_checkpoint`: the cpa_ar run of the
    same dataset and seed)."""
    config = config.copy_and_resolve_references()
    values = {key: config.task[key] for key in RUN_PLACEHOLDERS[:4]}
    values["seed"] = config.seed
    with config.unlocked():
        for key, value in config.system.items():
            if isinstance(value, str) and "{" in value:
                try:
                    config.system[key] = value.format(**values)
                except (KeyError, IndexError, ValueError) as err:
                    raise ConfigError(f"config field system.{key}: {value!r} cannot be filled ({err}); "
                                      f"the placeholders are {', '.join(RUN_PLACEHOLDERS)}") from None
    return config


def _get(config, dotted):
    for part in dotted.split("."):
        config = config[part]
    return config


def is_count(value, minimum: int = 0) -> bool:
    """True for an integer (not a bool) >= minimum: the test of step and size fields."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_fields(obj, rules) -> None:
    """Dataclass validation helper: rules are (field, ok: bool, message) triples."""
    for field, ok, message in rules:
        if not ok:
            raise ConfigError(f"config field system.{field}: {message}, got {getattr(obj, field)!r}")
