"""One run from a config: environment + vault -> buffer -> system -> trainer -> results JSON.

    python -m og_marl_inspo.launch --config=systems/bc.py:matrix/xor --config.seed=1

(`og-marl-inspo train ...` builds the same config from its flags and calls `run`.)
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import List, Optional

import ml_collections

from og_marl_inspo.config import fill_run_placeholders, validate_run
from og_marl_inspo.errors import ConfigError, TrainingError
from og_marl_inspo.reporting import results_path, write_json_atomic


def versions() -> dict:
    """Library versions recorded in every results file."""
    from importlib.metadata import version

    import jax
    import numpy
    import sonnet
    import tensorflow as tf

    import og_marl_inspo

    return {"og_marl_inspo": og_marl_inspo.__version__, "tensorflow": tf.__version__,
            "sonnet": sonnet.__version__, "flashbax": version("flashbax"),
            "jax": jax.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "devices": [d.device_type for d in tf.config.list_physical_devices()]}


def run_paths(config: ml_collections.ConfigDict, results_dir: str):
    """(results JSON, checkpoint dir, log dir) of a run."""
    task = config.task
    results = results_path(results_dir, task.source, task.env, task.scenario, task.dataset,
                           config.system_name, config.seed)
    stem = results.with_suffix("")
    return results, Path(f"{stem}_checkpoints"), Path(f"{stem}_logs")


def run(config: ml_collections.ConfigDict, results_dir: str = "results", progress: bool = True,
        checkpoint: bool = True) -> dict:
    """Train one (system, task, seed) and write its results file atomically."""
    import tensorflow as tf

    from og_marl_inspo import registry
    from og_marl_inspo.data.buffer import ReplayBuffer
    from og_marl_inspo.envs import get_environment
    from og_marl_inspo.loggers import JsonLinesLogger, MultiLogger, TensorBoardLogger, TerminalLogger
    from og_marl_inspo.trainer import train_run

    validate_run(config)
    config = fill_run_placeholders(config)
    task = config.task
    environment = get_environment(task.source, task.env, task.scenario, seed=config.seed)
    # Build the system before reading data: a bad config field fails in milliseconds.
    tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(config.seed)
    try:
        system = registry.get_system(config.system_name, environment, None, seed=config.seed,
                                     **config.system.to_dict())
    except TypeError as err:  # an unknown keyword for this system
        raise ConfigError(f"config block system: {err}") from None
    buffer = ReplayBuffer(config.replay.sequence_length, config.replay.batch_size,
                          config.replay.sample_period, seed=config.seed)
    buffer.populate_from_vault(task.source, task.env, task.scenario, task.dataset,
                               rel_dir=task.rel_dir, environment=environment)

    results_file, checkpoint_dir, log_dir = run_paths(config, results_dir)
    if checkpoint:
        _check_resume_config(checkpoint_dir, config)
    logger = MultiLogger([TerminalLogger(), TensorBoardLogger(str(log_dir)),
                          JsonLinesLogger(str(log_dir / "train.jsonl"))])
    system.logger = logger
    name = f"{config.system_name} {task.env}/{task.scenario}/{task.dataset} seed {config.seed}"
    try:
        outcome = train_run(
            system, buffer, environment, training_steps=config.training_steps,
            evaluation_every=config.evaluation.every, evaluation_episodes=config.evaluation.episodes,
            final_multiplier=config.evaluation.final_multiplier,
            checkpoint_every=config.checkpoint_every, seed=config.seed,
            checkpoint_dir=str(checkpoint_dir) if checkpoint else None, logger=logger,
            progress=progress, description=name)
    finally:
        logger.close()
    results = {"system": config.system_name, "source": task.source, "env": task.env,
               "scenario": task.scenario, "dataset": task.dataset, "seed": config.seed,
               "config": config.to_dict(), "versions": versions(), **outcome}
    write_json_atomic(results_file, results)
    return results


def restore(results_file):
    """(system, environment) of a finished run, from its results JSON and last checkpoint.

    The system is rebuilt from the config stored in the results file, then its
    variables are read from `seed_<k>_checkpoints/` beside it.
    """
    import tensorflow as tf

    from og_marl_inspo import registry
    from og_marl_inspo.envs import get_environment

    results_file = Path(results_file)
    if not results_file.exists():
        raise TrainingError(f"{results_file}: no results file (has the run finished?)")
    config = ml_collections.ConfigDict(json.loads(results_file.read_text())["config"])
    checkpoint_dir = Path(f"{results_file.with_suffix('')}_checkpoints")
    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    if latest is None:
        raise TrainingError(f"{checkpoint_dir}: no checkpoint to restore")
    task = config.task
    environment = get_environment(task.source, task.env, task.scenario, seed=config.seed)
    system = registry.get_system(config.system_name, environment, None, seed=config.seed,
                                 **config.system.to_dict())
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(step=step, **system.checkpoint_items()).restore(latest).expect_partial()
    system.training_step_ctr = int(step.numpy())
    return system, environment


def flatten(tree: dict, prefix: str = "") -> dict:
    """A nested dict as one level of dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def flat_config(config: ml_collections.ConfigDict) -> dict:
    """The config as one level of dotted keys, with JSON's values (lists, not tuples)."""
    return flatten(json.loads(json.dumps(config.to_dict())))


def config_differences(saved: dict, current: dict) -> List[str]:
    """'key: X there, Y now' for every dotted key whose value differs, sorted by key."""
    return [f"{key}: {saved.get(key)!r} there, {current.get(key)!r} now"
            for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]


def _check_resume_config(checkpoint_dir: Path, config: ml_collections.ConfigDict) -> None:
    """Refuse to resume a checkpoint made with another config (training_steps may grow)."""
    current = flat_config(config)
    current.pop("training_steps")
    saved_file = checkpoint_dir / "config.json"
    if not saved_file.exists():
        write_json_atomic(saved_file, current)
        return
    differ = config_differences(json.loads(saved_file.read_text()), current)
    if differ:
        raise TrainingError(f"{checkpoint_dir}: made with another config ({differ[0]}); "
                            f"delete it or use another --results-dir")


def main(argv) -> None:  # pragma: no cover - thin absl wrapper
    del argv
    run(_CONFIG.value, results_dir=os.environ.get("OG_MARL_INSPO_RESULTS", "results"))


if __name__ == "__main__":  # pragma: no cover
    from absl import app
    from ml_collections import config_flags

    _CONFIG = config_flags.DEFINE_config_file("config", None, "system config file (path.py:arg)")
    app.run(main)
