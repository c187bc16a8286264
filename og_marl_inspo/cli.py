"""The `og-marl-inspo` command.

    og-marl-inspo systems
    og-marl-inspo datasets build --source S --env E --scenario SC [--dataset UID] [--rel-dir DIR]
    og-marl-inspo datasets download --source cfcql --env smac_v1 --scenario MAP [--rel-dir DIR] [--url URL]
    og-marl-inspo datasets import --format pymarl --source S --env E --scenario SC --dataset UID FILE.npz
                                  [--rel-dir DIR] [--overwrite]
    og-marl-inspo datasets export --format pymarl --source S --env E --scenario SC --dataset UID
                                  --out FILE.npz [--rel-dir DIR]
    og-marl-inspo datasets list [--rel-dir DIR]
    og-marl-inspo datasets info --source S --env E --scenario SC --dataset UID [--rel-dir DIR]
    og-marl-inspo train --system NAME --source S --env E --scenario SC --dataset UID --seed K
                        [--config FILE[:ARG]] [--config.FIELD=VALUE ...] [--train-steps N]
                        [--rel-dir DIR] [--results-dir DIR]
    og-marl-inspo sweep --systems A,B --source S --env E --scenarios X,Y --datasets U,V
                        --seeds 0-4 [--workers N] [--results-dir DIR]
                        [--executor local|ray] [--ray-address ADDR]
    og-marl-inspo table --results-dir DIR [--source S] [--env E] [--format markdown|latex|csv] [--metric M]
                        [--last K]
    og-marl-inspo export marl-eval --results-dir DIR --out FILE
    og-marl-inspo reproduce TABLE|FIGURE [--seeds N] [--results-dir DIR] [--last K]
                            (figures: inspo-fig3, inspo-fig5, cpa-fig3, cpa-fig4;
                             a figure also takes --config.FIELD=VALUE for every run it trains)
    og-marl-inspo render --source S --env E --scenario SC [--system NAME --checkpoint DIR |
                         --dataset UID --episode K] --out FILE [--rel-dir DIR] [--seed K]

Bad input (a missing vault, a wrong size, an unknown name or field) ends with one
line on stderr and exit status 2; set OG_MARL_INSPO_DEBUG=1 for the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up noise off the console


def _parse_seeds(text: str) -> List[int]:
    """"0-4" -> [0..4]; "0,2,5" -> [0, 2, 5]."""
    seeds: List[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def _split(text: str) -> List[str]:
    return [x for x in text.split(",") if x]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="og-marl-inspo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("systems", help="list the registered systems")

    datasets = sub.add_parser("datasets", help="build, list and describe vaults")
    dsub = datasets.add_subparsers(dest="action", required=True)
    build = dsub.add_parser("build", help="roll out a dataset recipe into vaults")
    info = dsub.add_parser("info", help="statistics of one vault")
    for p in (build, info):
        p.add_argument("--source", required=True)
        p.add_argument("--env", required=True)
        p.add_argument("--scenario", required=True)
    build.add_argument("--dataset", default=None, help="one uid (default: every uid of the recipe)")
    info.add_argument("--dataset", required=True)
    listing = dsub.add_parser("list", help="vaults on disk")
    for p in (build, info, listing):
        p.add_argument("--rel-dir", default="vaults")
    download = dsub.add_parser("download", help="fetch OG-MARL's published vaults (cfcql/smac_v1)")
    download.add_argument("--source", required=True)
    download.add_argument("--env", required=True)
    download.add_argument("--scenario", required=True)
    download.add_argument("--rel-dir", default="vaults")
    download.add_argument("--url", default=None, help="zip location (default: OG-MARL's; file:// or a path)")
    imports = dsub.add_parser("import", help="write an episode batch of another codebase as a vault")
    exports = dsub.add_parser("export", help="write a vault as another codebase's episode batch")
    for p in (imports, exports):
        p.add_argument("--format", required=True, choices=("pymarl",))
        for flag in ("--source", "--env", "--scenario", "--dataset"):
            p.add_argument(flag, required=True)
        p.add_argument("--rel-dir", default="vaults")
    imports.add_argument("file", help=".npz with obs, state, actions, avail_actions, reward, "
                         "terminated, filled")
    imports.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    exports.add_argument("--out", required=True, help=".npz to write")

    train = sub.add_parser("train", help="train one system on one dataset and seed")
    for flag in ("--system", "--source", "--env", "--scenario", "--dataset"):
        train.add_argument(flag, required=True)
    train.add_argument("--seed", type=int, required=True)
    _run_flags(train)

    sweep = sub.add_parser("sweep", help="systems x scenarios x datasets x seeds (resumable)")
    sweep.add_argument("--systems", required=True, type=_split)
    sweep.add_argument("--source", required=True)
    sweep.add_argument("--env", required=True)
    sweep.add_argument("--scenarios", required=True, type=_split)
    sweep.add_argument("--datasets", required=True, type=_split)
    sweep.add_argument("--seeds", required=True, type=_parse_seeds)
    sweep.add_argument("--workers", type=int, default=1)
    _executor_flags(sweep)
    _run_flags(sweep)

    table = sub.add_parser("table", help="comparison table of the results")
    table.add_argument("--results-dir", default="results")
    table.add_argument("--source", default=None)
    table.add_argument("--env", default=None)
    table.add_argument("--format", default="markdown", choices=("markdown", "latex", "csv"))
    table.add_argument("--metric", default="episode_return_mean",
                       help="final-evaluation value per cell, e.g. win_rate (SMAC, SMAX)")
    _last_flag(table)

    export = sub.add_parser("export", help="export results for other tools")
    export.add_argument("target", choices=("marl-eval",))
    export.add_argument("--results-dir", default="results")
    export.add_argument("--out", required=True)

    reproduce = sub.add_parser("reproduce", help="fill a paper table (or draw a paper figure) "
                                "with the registered systems")
    reproduce.add_argument("table")
    reproduce.add_argument("--seeds", type=int, default=5)
    reproduce.add_argument("--systems", default=None,
                           help="comma-separated subset of the table's systems (default: all registered)")
    reproduce.add_argument("--envs", default=None,
                           help="comma-separated environments whose rows to run (default: all)")
    reproduce.add_argument("--workers", type=int, default=1)
    _executor_flags(reproduce)
    reproduce.add_argument("--results-dir", default="results")
    reproduce.add_argument("--rel-dir", default="vaults")
    reproduce.add_argument("--format", default="markdown", choices=("markdown", "latex", "csv"))
    reproduce.add_argument("--no-progress", action="store_true")
    _last_flag(reproduce)

    render = sub.add_parser("render", help="draw a grid-game episode (GIF, PNG strip) and a "
                            "trained system's joint actions")
    for flag in ("--source", "--env", "--scenario"):
        render.add_argument(flag, required=True)
    render.add_argument("--system", default=None, help="with --checkpoint: roll out this system")
    render.add_argument("--checkpoint", default=None, help="a run's seed_<k>_checkpoints folder")
    render.add_argument("--dataset", default=None, help="draw an episode of this dataset instead")
    render.add_argument("--episode", type=int, default=0, help="episode index in the dataset")
    render.add_argument("--out", required=True, help="FILE: writes FILE.gif, FILE.png "
                        "(and FILE_joint.png with a system)")
    render.add_argument("--rel-dir", default="vaults")
    render.add_argument("--seed", type=int, default=0, help="seed of the rolled-out episode")
    render.add_argument("--eval-mode", default=None, choices=("stochastic", "greedy"),
                        help="override the system's evaluation mode")
    return parser


def _executor_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local process pool (default) or Ray tasks (pip install og-marl-inspo[ray])")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to join (e.g. auto); default: a local Ray instance of --workers CPUs")


def _last_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--last", type=int, default=1, metavar="K",
                   help="value of a run: the mean of its last K evaluations, the final one "
                        "included (default 1: the final evaluation, as the papers report)")


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="config file, path.py[:arg] (default systems/<name>.py)")
    p.add_argument("--train-steps", type=int, default=None)
    p.add_argument("--rel-dir", default="vaults")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (sweeps, logs)")
    p.add_argument("--no-checkpoint", action="store_true", help="do not checkpoint or resume")


def run_config(system: str, source: str, env: str, scenario: str, dataset: str, seed: int,
               config_file: Optional[str] = None, overrides: Sequence[str] = (),
               train_steps: Optional[int] = None, rel_dir: str = "vaults"):
    """The config of one run: the system's file for this task, then the overrides."""
    from og_marl_inspo.config import apply_cli_overrides, default_config, load_config_file

    config = load_config_file(config_file) if config_file else default_config(system, env, scenario)
    with config.unlocked():
        config.system_name = system
        config.seed = seed
        config.task.update(dict(source=source, env=env, scenario=scenario, dataset=dataset,
                                rel_dir=rel_dir))
        if train_steps is not None:
            config.training_steps = train_steps
    apply_cli_overrides(config, overrides)
    return config


def _cmd_systems(args, extra) -> None:
    from og_marl_inspo.registry import list_systems

    print("\n".join(list_systems()))


def _cmd_datasets(args, extra) -> None:
    from og_marl_inspo.data import collect, vault

    if args.action == "build":
        summaries = collect.build_datasets(args.source, args.env, args.scenario,
                                           [args.dataset] if args.dataset else None, args.rel_dir)
        for uid, stats in summaries.items():
            path = vault.vault_dir(args.rel_dir, args.source, args.env, args.scenario) / uid
            won = f", win rate {stats['win_rate']:.3f}" if "win_rate" in stats else ""
            print(f"{path}: {stats['episodes']} episodes, {stats['transitions']} transitions, "
                  f"return {stats['return_mean']:.4f} ± {stats['return_std']:.4f}{won}")
    elif args.action == "import":
        from og_marl_inspo.data.importers import import_pymarl

        path, stats = import_pymarl(args.file, args.source, args.env, args.scenario, args.dataset,
                                    args.rel_dir, overwrite=args.overwrite)
        print(f"{path}: {stats['episodes']} episodes, {stats['transitions']} transitions, "
              f"return {stats['return_mean']:.4f} ± {stats['return_std']:.4f}")
    elif args.action == "export":
        from og_marl_inspo.data.importers import export_pymarl

        stats = export_pymarl(args.source, args.env, args.scenario, args.dataset, args.out,
                              args.rel_dir)
        print(f"{args.out}: {stats['episodes']} episodes, {stats['steps']} steps, "
              f"{stats['slots']} slots (T+1)")
    elif args.action == "download":
        from og_marl_inspo.data.importers import download_vault

        download_vault(args.source, args.env, args.scenario, rel_dir=args.rel_dir, url=args.url)
    elif args.action == "list":
        for source, env, scenario, uid, meta in vault.list_vaults(args.rel_dir):
            stats = (f"{meta.get('episodes', '?')} episodes, return {meta['return_mean']:.4f}"
                     if "return_mean" in meta else "no statistics in metadata")
            if "win_rate" in meta:
                stats += f", win rate {meta['win_rate']:.3f}"
            print(f"{source}/{env}/{scenario}.vlt/{uid}: {stats}")
    else:
        from og_marl_inspo.envs import get_environment

        environment = get_environment(args.source, args.env, args.scenario)
        data = vault.read_vault(args.rel_dir, args.source, args.env, args.scenario, args.dataset,
                                environment)
        stats = vault.summary(data)
        print(f"{vault.vault_dir(args.rel_dir, args.source, args.env, args.scenario) / args.dataset}")
        recorded = vault.read_metadata(args.rel_dir, args.source, args.env, args.scenario,
                                       args.dataset)
        if "win_rate" in recorded:  # known only when the vault was built (SMAX)
            stats["win_rate"] = recorded["win_rate"]
        for key, value in stats.items():
            print(f"  {key:12s} {value:.4f}" if isinstance(value, float) else f"  {key:12s} {value}")
        if args.env == "matrix":
            print("  joint-action frequencies (agent_0, agent_1, ...; 0 = A, 1 = B, ...):")
            for joint, freq in vault.joint_action_frequencies(data).items():
                letters = ",".join("ABCDEFGHIJ"[a] if a < 10 else str(a) for a in joint)
                print(f"    ({letters}): {freq:.4f}")


def _cmd_train(args, extra) -> None:
    from og_marl_inspo.launch import run

    config = run_config(args.system, args.source, args.env, args.scenario, args.dataset, args.seed,
                        args.config, extra, args.train_steps, args.rel_dir)
    results = run(config, args.results_dir, progress=not args.no_progress,
                  checkpoint=not args.no_checkpoint)
    final = results["final"]
    print(f"{args.system} {args.env}/{args.scenario}/{args.dataset} seed {args.seed}: "
          f"return {final['episode_return_mean']:.4f} ± {final['episode_return_std']:.4f} "
          f"over {final['episodes']} episodes, {results['train_steps_per_second']:.1f} steps/s")


def _cmd_sweep(args, extra) -> None:
    from og_marl_inspo.sweep import Run, sweep

    runs = [Run(system, args.source, args.env, scenario, dataset, seed)
            for system in args.systems for scenario in args.scenarios
            for dataset in args.datasets for seed in args.seeds]
    failures = sweep(runs, results_dir=args.results_dir, workers=args.workers, config_file=args.config,
                     overrides=extra, train_steps=args.train_steps, rel_dir=args.rel_dir,
                     checkpoint=not args.no_checkpoint, executor=args.executor,
                     ray_address=args.ray_address)
    if failures:
        raise SystemExit(f"og-marl-inspo: {len(failures)} of {len(runs)} runs failed:\n"
                         + "\n".join(failures))


def _cmd_table(args, extra) -> None:
    from og_marl_inspo.reporting import load_results, make_table

    results = load_results(args.results_dir, source=args.source, env=args.env)
    if not results:
        raise ValueError(f"{args.results_dir}: no results found")
    print(make_table(results, source=args.source, env=args.env, fmt=args.format, metric=args.metric,
                     last=args.last))


def _cmd_export(args, extra) -> None:
    from og_marl_inspo.reporting import export_marl_eval

    export_marl_eval(args.results_dir, args.out)
    print(f"wrote {args.out}")


def _draws_a_figure(args) -> bool:
    from og_marl_inspo.figures import FIGURES

    return args.command == "reproduce" and args.table in FIGURES


def _cmd_reproduce(args, extra) -> None:
    from og_marl_inspo.figures import FIGURES, reproduce_figure
    from og_marl_inspo.sweep import reproduce

    if args.table in FIGURES:
        print(reproduce_figure(args.table, seeds=args.seeds, results_dir=args.results_dir,
                               rel_dir=args.rel_dir, workers=args.workers,
                               progress=not args.no_progress, overrides=extra))
        return
    print(reproduce(args.table, seeds=args.seeds, results_dir=args.results_dir, rel_dir=args.rel_dir,
                    workers=args.workers, fmt=args.format, progress=not args.no_progress,
                    executor=args.executor, ray_address=args.ray_address,
                    only=args.systems.split(",") if args.systems else None,
                    envs=args.envs.split(",") if args.envs else None, last=args.last))


def _cmd_render(args, extra) -> None:
    from og_marl_inspo.render import render

    written = render(args.source, args.env, args.scenario, args.out, system_name=args.system,
                     checkpoint=args.checkpoint, dataset=args.dataset, episode_index=args.episode,
                     rel_dir=args.rel_dir, seed=args.seed, eval_mode=args.eval_mode)
    print(f"{written['gif']}: {written['frames']} frames, episode return {written['return']:.4f}")
    print(written["png"])
    if "joint" in written:
        print(written["joint"])


COMMANDS = {"systems": _cmd_systems, "datasets": _cmd_datasets, "train": _cmd_train,
            "sweep": _cmd_sweep, "table": _cmd_table, "export": _cmd_export,
            "reproduce": _cmd_reproduce, "render": _cmd_render}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = [x[len("--config."):] for x in extra if x.startswith("--config.")]
    unknown = [x for x in extra if not x.startswith("--config.")]
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)}")
    if overrides and not (args.command in ("train", "sweep") or _draws_a_figure(args)):
        parser.error("--config.FIELD=VALUE overrides apply to train, sweep and reproduce FIGURE only")
    from og_marl_inspo.errors import USER_ERRORS

    try:
        COMMANDS[args.command](args, overrides)
    except USER_ERRORS as err:
        if os.environ.get("OG_MARL_INSPO_DEBUG"):
            raise
        print(f"og-marl-inspo: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
