"""Many runs: systems x scenarios x datasets x seeds, resumable, and paper reproductions.

A sweep skips every run whose results file exists, so an interrupted sweep is resumed
by running the same command again (and an interrupted run resumes from its own
checkpoint). With `workers > 1` runs go to separate processes, each with one
TensorFlow thread pool of its own. With `executor="ray"` the same runs are Ray tasks
(one CPU each) on a Ray cluster (`ray_address`) or on a local Ray instance. A local
sweep that is killed takes its worker processes with it within seconds.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import json
import multiprocessing
import os
import threading
import time
from typing import Iterator, List, Optional, Sequence, Tuple

from absl import logging

from og_marl_inspo.errors import USER_ERRORS

EXECUTORS = ("local", "ray")  # local: this machine's process pool (the default)


@dataclasses.dataclass(frozen=True)
class Run:
    system: str
    source: str
    env: str
    scenario: str
    dataset: str
    seed: int

    def __str__(self) -> str:
        return f"{self.system} {self.source}/{self.env}/{self.scenario}/{self.dataset} seed {self.seed}"


def _run_one(run: Run, results_dir: str, config_file: Optional[str], overrides: Sequence[str],
             train_steps: Optional[int], rel_dir: str, checkpoint: bool, progress: bool) -> str:
    """Train one run in this process; '' on success, else the one-line error."""
    from og_marl_inspo.cli import run_config
    from og_marl_inspo.launch import run as launch_run

    try:
        config = run_config(run.system, run.source, run.env, run.scenario, run.dataset, run.seed,
                            config_file, overrides, train_steps, rel_dir)
        launch_run(config, results_dir, progress=progress, checkpoint=checkpoint)
    except USER_ERRORS as err:
        return f"{run}: {err}"
    return ""


def _worker_init() -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _pool_worker_init() -> None:
    """`_worker_init`, and stop this worker when the sweep that started it is gone."""
    _worker_init()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 2.0) -> None:
    """Exit once this process's parent is no longer `parent`: the sweep was killed (SIGTERM from
    a scheduler, SIGKILL), not interrupted. An orphan would train on, beside the same run of a
    restarted sweep; the run's last checkpoint is where that sweep resumes it."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _run_one_ray(run: Run, *args) -> str:
    """`_run_one` in a Ray worker, which may already have run (and started TensorFlow)."""
    try:
        _worker_init()
    except RuntimeError:  # TensorFlow already initialised by an earlier task in this worker
        pass
    return _run_one(run, *args)


def _ray_results(todo: Sequence[Run], args: tuple, workers: int,
                 address: Optional[str]) -> Iterator[Tuple[Run, str]]:
    """Run `todo` as Ray tasks; yield (run, error) as each one ends.

    Uses the Ray instance this process already joined, else `ray.init(address)`: an
    address joins a cluster ("auto", "ray://host:10001"), none starts a local instance
    of `workers` CPUs (shut down again at the end). Every node must have this package
    installed and see `results_dir` and `rel_dir` at the same absolute paths.
    """
    try:
        import ray
    except ImportError:
        raise ValueError("executor 'ray' needs Ray: pip install 'og-marl-inspo[ray]'") from None
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False)
    try:
        task = ray.remote(num_cpus=1)(_run_one_ray)
        pending = {task.remote(run, *args, False): run for run in todo}
        waiting = list(pending)
        while waiting:
            (done,), waiting = ray.wait(waiting, num_returns=1)
            yield pending[done], ray.get(done)
    finally:
        if started:
            ray.shutdown()


def stale_runs(done: Sequence[Run], results_dir: str, config_file: Optional[str] = None,
               overrides: Sequence[str] = (), train_steps: Optional[int] = None,
               rel_dir: str = "vaults") -> List[Tuple[Run, List[str]]]:
    """The finished runs whose results file holds another config than this sweep would
    give them (a config file edited since, other overrides), each with its differences."""
    from og_marl_inspo.cli import run_config
    from og_marl_inspo.config import fill_run_placeholders
    from og_marl_inspo.launch import config_differences, flat_config, flatten
    from og_marl_inspo.reporting import results_path

    stale = []
    for run in done:
        saved = json.loads(results_path(results_dir, run.source, run.env, run.scenario, run.dataset,
                                        run.system, run.seed).read_text())["config"]
        current = fill_run_placeholders(run_config(run.system, run.source, run.env, run.scenario,
                                                   run.dataset, run.seed, config_file, overrides,
                                                   train_steps, rel_dir))
        differ = config_differences(flatten(saved), flat_config(current))
        if differ:
            stale.append((run, differ))
    return stale


def off_paper_eval_modes(runs: Sequence[Run], config_file: Optional[str] = None,
                         overrides: Sequence[str] = (), rel_dir: str = "vaults"
                         ) -> List[Tuple[Run, str, str]]:
    """The runs this sweep would evaluate otherwise than the paper table of their row
    (e.g. a grid-game AlberDICE, sampled by its own config, on a CPA Table 1 row, which
    the paper evaluates greedily), each with (ours, the paper's)."""
    from og_marl_inspo.cli import run_config
    from og_marl_inspo.reporting import paper_mode_if_other

    off = []
    for run in runs:
        ours = run_config(run.system, run.source, run.env, run.scenario, run.dataset, run.seed,
                          config_file, overrides, None, rel_dir).system.get("eval_mode")
        paper = paper_mode_if_other(ours, run.source, run.env, run.scenario, run.dataset)
        if paper:
            off.append((run, ours, paper))
    return off


def sweep(runs: Sequence[Run], results_dir: str = "results", workers: int = 1,
          config_file: Optional[str] = None, overrides: Sequence[str] = (),
          train_steps: Optional[int] = None, rel_dir: str = "vaults", checkpoint: bool = True,
          progress: bool = False, executor: str = "local",
          ray_address: Optional[str] = None) -> List[str]:
    """Run every run whose results file is missing; return the failures' messages.

    `executor` "local" (default) trains here, in `workers` processes; "ray" sends each
    run to Ray (`ray_address`, or a local instance of `workers` CPUs).
    """
    from og_marl_inspo.reporting import results_path

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    todo = [r for r in runs if not results_path(results_dir, r.source, r.env, r.scenario, r.dataset,
                                                r.system, r.seed).exists()]
    logging.warning("sweep: %d runs, %d already done, %d to run", len(runs), len(runs) - len(todo),
                    len(todo))
    stale = stale_runs([r for r in runs if r not in todo], results_dir, config_file, overrides,
                       train_steps, rel_dir)
    if stale:  # kept as they are: say so
        logging.warning("sweep: %d finished runs were made with another config and are kept as they "
                        "are, e.g. %s (%s); delete them or use another --results-dir to rerun them",
                        len(stale), stale[0][0], "; ".join(stale[0][1]))
    off_mode = off_paper_eval_modes(todo, config_file, overrides, rel_dir)
    if off_mode:  # trained as asked, but their cells would not compare with the paper's
        run, ours, paper = off_mode[0]
        logging.warning("sweep: %d runs evaluate otherwise than their paper table, e.g. %s: %s here, "
                        "%s in the paper; add --config.system.eval_mode=%s to compare with it (as "
                        "`reproduce` does)", len(off_mode), run, ours, paper, paper)
    args = (results_dir, config_file, tuple(overrides), train_steps, rel_dir, checkpoint)
    failures: List[str] = []
    start = time.time()

    def report(i: int, run: Run, error: str) -> None:
        status = "FAILED: " + error if error else "done"
        print(f"[{i}/{len(todo)}] {run}: {status} ({time.time() - start:.0f} s into the sweep)", flush=True)
        if error:
            failures.append(error)

    if executor == "ray" and todo:  # Ray workers may start elsewhere: absolute paths
        args = (os.path.abspath(results_dir), config_file and os.path.abspath(config_file),
                tuple(overrides), train_steps, os.path.abspath(rel_dir), checkpoint)
        for i, (run, error) in enumerate(_ray_results(todo, args, workers, ray_address), 1):
            report(i, run, error)
        return failures
    if workers <= 1 or not todo:
        for i, run in enumerate(todo, 1):
            report(i, run, _run_one(run, *args, progress=progress))
        return failures
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_pool_worker_init) as pool:
        pending = {pool.submit(_run_one, run, *args, False): run for run in todo}
        for i, done in enumerate(futures.as_completed(pending), 1):
            report(i, pending[done], done.result())
    return failures


def reproduce(table: str, seeds: int = 5, results_dir: str = "results", rel_dir: str = "vaults",
              workers: int = 1, fmt: str = "markdown", progress: bool = False,
              executor: str = "local", ray_address: Optional[str] = None,
              only: Optional[Sequence[str]] = None, envs: Optional[Sequence[str]] = None,
              last: int = 1) -> str:
    """Fill a paper table with every registered system it names (or those of them in
    `only`), on all its rows (or those of the environments in `envs`); return the table text,
    each run valued by its last `last` evaluations (`reporting.run_value`)."""
    from og_marl_inspo.data.collect import RECIPES, build_datasets
    from og_marl_inspo.data.vault import available_uids
    from og_marl_inspo.registry import list_systems, system_class
    from og_marl_inspo.reporting import PAPER_TABLES, table_for

    if table not in PAPER_TABLES:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(sorted(PAPER_TABLES))}")
    if last < 1:  # before any training, not after
        raise ValueError(f"last must be >= 1, got {last}")
    spec = PAPER_TABLES[table]
    registered = set(list_systems())
    if only:
        unknown = sorted(set(only) - set(spec.systems))
        if unknown:
            raise ValueError(f"{table} has no column {', '.join(unknown)}; its systems: "
                             f"{', '.join(spec.systems)}")
    if envs:
        unknown = sorted(set(envs) - {env for env, _, _ in spec.rows})
        if unknown:
            raise ValueError(f"{table} has no rows on {', '.join(unknown)}; its environments: "
                             f"{', '.join(dict.fromkeys(env for env, _, _ in spec.rows))}")
    rows = [row for row in spec.rows if not envs or row[0] in envs]
    systems = [s for s in spec.systems if s in registered and (not only or s in only)]
    missing = [s for s in spec.systems if s not in registered]
    if missing:
        logging.warning("%s: not registered yet, left empty: %s", table, ", ".join(missing))
    runs = []
    unavailable = sorted({f"{env}/{scenario}" for env, scenario, _ in rows
                          if (spec.source, env, scenario) not in RECIPES})
    if unavailable:
        logging.warning("%s: no local dataset recipe yet, rows left empty: %s", table,
                        ", ".join(unavailable))
    for env, scenario, dataset in rows:
        if (spec.source, env, scenario) not in RECIPES:
            continue
        if dataset not in available_uids(rel_dir, spec.source, env, scenario):
            build_datasets(spec.source, env, scenario, [dataset], rel_dir)
        runs += [Run(system, spec.source, env, scenario, dataset, seed)
                 for system in systems for seed in range(seeds)]
    common = dict(rel_dir=rel_dir, progress=progress, executor=executor, ray_address=ray_address)
    eval_mode = f"system.eval_mode={spec.eval_mode}"
    # A system whose class names a TEACHER in this table (cpa_pa: cpa_ar) starts from that
    # system's finished runs (`from_teacher`) instead of training the same teacher again.
    teachers = {system: getattr(system_class(system), "TEACHER", None) for system in systems}
    students = [r for r in runs if teachers[r.system] in systems]
    failures = sweep([r for r in runs if r not in students], results_dir, workers,
                     overrides=[eval_mode], **common)
    for system, env, scenario in sorted({(r.system, r.env, r.scenario) for r in students}):
        overrides, train_steps = system_class(system).from_teacher(results_dir, env, scenario)
        failures += sweep([r for r in students if (r.system, r.env, r.scenario) == (system, env, scenario)],
                          results_dir, workers, overrides=[eval_mode, *overrides], train_steps=train_steps,
                          **common)
    if failures:
        raise RuntimeError(f"{table}: {len(failures)} runs failed:\n" + "\n".join(failures))
    return table_for(table, results_dir, fmt, last=last)
