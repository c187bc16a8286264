"""The shared loop of every system: train, evaluate, log, checkpoint, resume.

`train_run` is what the CLI runs: it evaluates at step 0, every `evaluation.every`
steps and once at the end with `final_multiplier` times the episodes (OG-MARL's
schedule), checkpoints with `tf.train.CheckpointManager` every `checkpoint_every` steps
and, when a checkpoint exists, resumes from it. Every random draw is keyed by
(seed, step) or lives in a checkpointed generator, so a run killed and restarted
ends with exactly the numbers of an uninterrupted one.

`og_marl_train` is OG-MARL's own `train()` loop, for callers that use the system
through OG-MARL's interface.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
from absl import logging
from tqdm import tqdm

from og_marl_inspo.errors import TrainingError


TRAIN_LOG_EVERY = 100  # steps between train-log writes (TensorBoard, JSON lines)
STEP_SUM = "_state_sums"  # suffix of run_episodes' per-state sums (entropy, `last_step_stats`)


def eval_seed(seed: int, step: int) -> int:
    """The environment and action-sampling seed of the evaluation at `step`."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0] % (2**31 - 1))


def run_episodes(system, environment, num_episodes: int, seed: int,
                 max_steps: int = 100_000) -> Dict[str, np.ndarray]:
    """Run `num_episodes` episodes at once (one policy call per step for all of them).

    Returns per-episode `episode_returns` (OG-MARL's return: the sum over steps of the
    team reward), `episode_lengths`, any per-episode statistics the environment's
    batch reports (e.g. `win_rate`) and, under keys ending in STEP_SUM, sums over visited
    states of the policy average entropy and of the figures the system reports in
    `last_step_stats` (each only if reported at every step). An environment whose
    copies are expensive (a StarCraft II process each) caps the episodes run at once
    with `max_parallel_episodes`; the rest follow in chunks.
    """
    chunk = getattr(environment, "max_parallel_episodes", None) or num_episodes
    parts = [_run_batch(system, environment, min(chunk, num_episodes - start), seed + start, max_steps)
             for start in range(0, num_episodes, chunk)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _run_batch(system, environment, num_episodes: int, seed: int, max_steps: int):
    rng = np.random.default_rng(seed)
    batch = environment.batch(num_episodes, seed)
    obs, legals, state = batch.reset()
    system.reset(num_episodes)
    returns = np.zeros(num_episodes)
    lengths = np.zeros(num_episodes, dtype=np.int64)
    active = np.ones(num_episodes, dtype=bool)
    sums: Dict[str, np.ndarray] = {}  # per-state figures summed over the visited states
    dropped = set()  # figures some step did not report
    for step in range(max_steps):
        if not active.any():
            break
        system.last_marginals = system.last_step_stats = None
        actions = system.act(obs, legals, rng, state)
        figures = dict(getattr(system, "last_step_stats", None) or {})
        if getattr(system, "last_marginals", None) is not None:  # CPA Eq. 19 inside E_s
            figures["policy_average_entropy"] = mean_entropy_bits(system.last_marginals)
        if step:
            dropped |= set(sums) ^ set(figures)  # missing now, or missing before
        for key, value in figures.items():
            sums[key] = sums.get(key, 0.0) + np.where(active, value, 0.0)
        obs, legals, state, rewards, done = batch.step(actions, active)
        returns += np.where(active, rewards, 0.0)
        lengths += active
        active &= ~done
    else:
        raise TrainingError(f"evaluation episodes did not end within {max_steps} steps")
    result = {"episode_returns": returns, "episode_lengths": lengths}
    result.update({f"{key}{STEP_SUM}": value for key, value in sums.items() if key not in dropped})
    stats = getattr(batch, "stats", None)
    if callable(stats):
        result.update({k: np.asarray(v, dtype=np.float64) for k, v in stats().items()})
    return result


def mean_entropy_bits(marginals: np.ndarray) -> np.ndarray:
    """CPA Eq. 19 inside the expectation: (1/N) sum_i -sum_a P(a_i|s) log2 P(a_i|s).

    marginals (E,N,A) -> (E,); zero probabilities contribute 0.
    """
    p = np.asarray(marginals, np.float64)
    terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(-1).mean(-1)


def evaluation_record(system, environment, step: int, episodes: int, seed: int) -> dict:
    """One evaluation as stored in the results JSON."""
    out = run_episodes(system, environment, episodes, eval_seed(seed, step))
    returns = out.pop("episode_returns")
    record = {"step": int(step), "episode_return_mean": float(returns.mean()),
              "episode_return_std": float(returns.std()), "episodes": int(episodes),
              "episode_returns": [float(r) for r in returns]}
    lengths = out.pop("episode_lengths")
    for key in [k for k in out if k.endswith(STEP_SUM)]:  # E over every visited state (CPA Eq. 19)
        record[key[:-len(STEP_SUM)]] = float(out.pop(key).sum() / lengths.sum())
    record.update({k: float(np.mean(v)) for k, v in out.items()})
    return record


def _finite_logs(logs: Dict, step: int) -> Dict[str, float]:
    values = {k: float(v) for k, v in logs.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise TrainingError(f"training diverged at step {step}: {', '.join(bad)} = "
                            f"{values[bad[0]]}")
    return values


def train_run(system, buffer, environment, *, training_steps: int, evaluation_every: int,
              evaluation_episodes: int, final_multiplier: int, checkpoint_every: int, seed: int,
              checkpoint_dir: Optional[str], logger=None, progress: bool = True,
              description: str = "train") -> dict:
    """Train with evaluations and checkpoints; return the evaluations and timing.

    Returns {"evaluations": [...], "final": {...}, "wall_time_s", "train_steps_per_second"}.
    """
    evaluations_var = tf.Variable("[]", dtype=tf.string, trainable=False)
    train_time_var = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    manager = None
    if checkpoint_dir is not None:
        checkpoint = tf.train.Checkpoint(step=system._step, evaluations=evaluations_var,
                                         train_time=train_time_var, **system.checkpoint_items())
        manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            logging.info("resumed from %s at step %d", manager.latest_checkpoint,
                         system.training_step_ctr)
    evaluations: List[dict] = json.loads(evaluations_var.numpy().decode())
    start = system.training_step_ctr
    train_time = float(train_time_var.numpy())

    def save() -> None:
        if manager is not None:
            evaluations_var.assign(json.dumps(evaluations))
            train_time_var.assign(train_time)
            manager.save(checkpoint_number=system.training_step_ctr)

    bar = tqdm(total=training_steps, initial=start, desc=description, disable=not progress,
               dynamic_ncols=True, mininterval=1.0)
    wall_start = time.time()
    for step in range(start, training_steps):
        if step % evaluation_every == 0 and not any(e["step"] == step for e in evaluations):
            evaluations.append(evaluation_record(system, environment, step, evaluation_episodes, seed))
            _log_evaluation(logger, evaluations[-1])
        t0 = time.perf_counter()
        buffer.samples_drawn = step  # batch k is a function of (seed, k): resumable
        experience = buffer.sample()
        t1 = time.perf_counter()
        logs = _finite_logs(system.train_step(experience), step)
        t2 = time.perf_counter()
        train_time += t2 - t0
        system._step.assign_add(1)
        if logger is not None and (step % TRAIN_LOG_EVERY == 0 or step == training_steps - 1):
            logger.write({**logs, "training_steps": step, "time_for_sampling": t1 - t0,
                          "time_for_training_step": t2 - t1, "training_sps": 1.0 / max(t2 - t0, 1e-9)})
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:2]})
        if (step + 1) % checkpoint_every == 0 and step + 1 < training_steps:
            save()
    bar.close()
    final = evaluation_record(system, environment, training_steps,
                              final_multiplier * evaluation_episodes, seed)
    _log_evaluation(logger, final)
    # train_time is carried in the checkpoint, so it covers every step since step 0
    sps = training_steps / train_time if train_time > 0 and training_steps > start else 0.0
    save()
    return {"evaluations": evaluations, "final": final,
            "wall_time_s": time.time() - wall_start, "train_steps_per_second": sps}


def _log_evaluation(logger, record: dict) -> None:
    if logger is None:
        return
    returns = record["episode_returns"]
    logger.write({"evaluation/mean_episode_return": record["episode_return_mean"],
                  "evaluation/max_episode_return": max(returns),
                  "evaluation/min_episode_return": min(returns),
                  "evaluation/training_steps": record["step"]}, force=True)


def og_marl_train(system, replay_buffer, training_steps: int, evaluation_every: Optional[int],
                  num_eval_episodes: int) -> None:
    """OG-MARL's `BaseOfflineSystem.train` loop and log keys (og_marl_contract.md 3.3)."""
    logger = system.logger
    for _ in range(int(training_steps)):
        ctr = system.training_step_ctr
        if evaluation_every is not None and ctr % evaluation_every == 0:
            _write(logger, {**system.evaluate(num_eval_episodes), "evaluation/training_steps": ctr}, True)
        t0 = time.perf_counter()
        experience = replay_buffer.sample()
        t1 = time.perf_counter()
        logs = _finite_logs(system.train_step(experience), ctr)
        t2 = time.perf_counter()
        _write(logger, {**logs, "training_steps": ctr, "time_for_sampling": t1 - t0,
                        "time_for_training_step": t2 - t1, "training_sps": 1.0 / max(t2 - t0, 1e-9)})
        system._step.assign_add(1)
    _write(logger, {**system.evaluate(10 * num_eval_episodes),
                    "evaluation/training_steps": system.training_step_ctr}, True)


def _write(logger, logs: Dict, force: bool = False) -> None:
    if logger is not None:
        logger.write(logs, force=force)
