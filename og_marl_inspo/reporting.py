"""Result files in, comparison tables and marl-eval JSON out.

One run writes `<results_dir>/<source>/<env>/<scenario>/<dataset>/<system>/seed_<k>.json`
(`results_path`, `write_json_atomic`). Everything else here is a function over those
files; nothing runs at import:

- `load_results` reads and validates them, `summarise` reduces seeds to a `Cell`
  (per-seed final values, mean, population std); `run_value` is one run's value, its
  final evaluation or, as an option of ours, the mean of its last K.
- `make_table` / `table_for` render markdown, LaTeX or CSV tables in the InSPO paper's
  convention: mean ± std over seeds, the best mean of a row in bold, a star on every other
  cell that a two-sided Welch t-test at 5 % cannot separate from the best
  (`welch_indistinguishable`), and the published value beside ours (`PAPER`).
- `export_marl_eval` writes the marl-eval layout (og_marl_contract.md §7).

`PAPER` and `PAPER_TABLES` transcribe InSPO (Liu et al., AAAI 2025) Tables 1-4 and CPA
(Zhou et al., AAAI 2025) Table 1, as quoted in specs/environments.md. Higher is better
in every table (returns and win rates).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from absl import logging
from scipy import stats

#: Keys every result file must hold to be read.
REQUIRED_KEYS = ("system", "source", "env", "scenario", "dataset", "seed", "evaluations", "final")
#: Output formats of `make_table` and `table_for`.
FORMATS = ("markdown", "latex", "csv")
#: Text of a cell without results.
MISSING = "–"

# Display orders (known names first, in the papers' order; unknown names after, sorted).
# Each paper's column and row order is a subsequence of these.
SOURCE_ORDER = ("inspo", "cpa", "alberdice", "cfcql")
ENV_ORDER = ("matrix", "bridge", "sensor", "aloha", "smac_v1", "smax")
SCENARIO_ORDER = ("xor", "m_ne", "permutation", "bridge", "sensor", "aloha",
                  "2s3z", "3s_vs_5z", "5m_vs_6m", "6h_vs_8z")
DATASET_ORDER = ("A", "B", "C", "AB+BA", "AA+AB+BA", "Complete", "Balanced", "Imbalanced",
                 "Optimal", "Poor", "Medium", "Medium-Replay", "Expert", "Good", "Mixed")
SYSTEM_ORDER = ("bc", "bcq", "cql", "maicq", "omar", "alberdice", "cfcql", "omiga", "inspo",
                "cpa_ar", "cpa_pa")

RowKey = tuple[str, str, str, str]  # (source, env, scenario, dataset)


# ---------------------------------------------------------------------------------------
# Result files
# ---------------------------------------------------------------------------------------


def results_path(results_dir, source: str, env: str, scenario: str, dataset: str,
                 system: str, seed: int) -> Path:
    """Path of one run's result file in the results tree."""
    return Path(results_dir) / source / env / scenario / dataset / system / f"seed_{int(seed)}.json"


def _json_default(value: Any) -> Any:
    """Lets `json.dump` write numpy scalars and arrays."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"object of type {type(value).__name__} is not JSON serialisable")


def write_json_atomic(path, obj: Any) -> Path:
    """Writes `obj` as JSON so that `path` holds either the old or the new file, never half.

    The JSON goes to a temporary file in the same directory, is flushed and fsynced, then
    `os.replace`d onto `path`. Numpy scalars and arrays are written as numbers and lists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, default=_json_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself (POSIX only)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def save_figure(fig, stem, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Writes a matplotlib figure as `stem.png` and `stem.pdf`, each atomically; closes it."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        os.replace(tmp, path)
        paths.append(path)
    plt.close(fig)
    return paths


def _read_result(path: Path) -> dict | None:
    """One result file, or None (with a warning) when it is unreadable or incomplete."""
    try:
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        logging.warning("skipping result file %s: not valid JSON (%s)", path, e)
        return None
    if not isinstance(result, dict):
        logging.warning("skipping result file %s: not a JSON object", path)
        return None
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        logging.warning("skipping result file %s: missing keys %s", path, missing)
        return None
    if not isinstance(result["final"], dict) or not isinstance(result["evaluations"], list):
        logging.warning("skipping result file %s: 'final' must be an object and "
                        "'evaluations' a list", path)
        return None
    try:
        result["seed"] = int(result["seed"])
    except (TypeError, ValueError):
        logging.warning("skipping result file %s: seed %r is not an integer", path, result["seed"])
        return None
    return result


def _result_sort_key(result: Mapping) -> tuple:
    return (str(result["source"]), str(result["env"]), str(result["scenario"]),
            str(result["dataset"]), str(result["system"]), result["seed"])


def load_results(results_dir, source: str | None = None, env: str | None = None) -> list[dict]:
    """Every valid `seed_*.json` under `results_dir`, optionally of one source and/or env.

    Files that are not valid JSON or lack `REQUIRED_KEYS` are skipped with a warning. The
    list is sorted by (source, env, scenario, dataset, system, seed).
    """
    pattern = f"{source or '*'}/{env or '*'}/*/*/*/seed_*.json"
    results = []
    for path in sorted(Path(results_dir).glob(pattern)):
        result = _read_result(path)
        if result is None:
            continue
        if source is not None and result["source"] != source:
            continue
        if env is not None and result["env"] != env:
            continue
        results.append(result)
    return sorted(results, key=_result_sort_key)


# ---------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    """One table cell: a system's final metric over seeds."""

    values: list[float]  # one final value per seed, sorted by seed
    mean: float
    std: float  # population std (ddof=0), as the InSPO and CPA papers print
    n: int
    seeds: list[int]

    @classmethod
    def from_values(cls, values: Sequence[float], seeds: Sequence[int]) -> "Cell":
        """Builds a cell from per-seed values (already sorted by seed)."""
        array = np.asarray(values, dtype=np.float64)
        return cls(values=[float(v) for v in array], mean=float(array.mean()),
                   std=float(array.std(ddof=0)), n=int(array.size), seeds=[int(s) for s in seeds])


def run_value(result: Mapping, metric: str = "episode_return_mean", last: int = 1) -> float | None:
    """The value one run contributes to its cell; None when it lacks `metric`.

    `last=1`: `result["final"][metric]`, the final evaluation, as both papers report.
    `last=K` (ours, for returns that flip between evaluations, as Bridge's greedy
    deadlock/crossing does): the mean of `metric` over the run's last K evaluations,
    the final one included, each evaluation counted once whatever its episode count.
    A run with fewer than K evaluations is refused.
    """
    if last < 1:
        raise ValueError(f"last must be >= 1, got {last}")
    final = result["final"]
    series = [e for e in result["evaluations"] if e.get("step") != final.get("step")] + [final]
    if len(series) < last:
        raise ValueError(f"{result['source']}/{result['env']}/{result['scenario']}/"
                         f"{result['dataset']}/{result['system']} seed {result['seed']}: "
                         f"last={last} but the run has {len(series)} evaluations")
    values = [e.get(metric) for e in series[-last:]]
    if any(v is None for v in values):
        return None
    return float(np.mean(values))


def summarise(results: Iterable[Mapping], metric: str = "episode_return_mean", last: int = 1
              ) -> dict[RowKey, dict[str, Cell]]:
    """Groups results by (source, env, scenario, dataset) and system; reduces seeds to a Cell.

    The value of a run is `run_value(result, metric, last)`, the final evaluation's by
    default; runs without it are skipped with a warning.
    """
    grouped: dict[RowKey, dict[str, list[tuple[int, float]]]] = {}
    for result in results:
        key = (result["source"], result["env"], result["scenario"], result["dataset"])
        value = run_value(result, metric, last)
        if value is None:
            logging.warning("result %s/%s seed %s has no %r in its last %d evaluation(s); skipped",
                            "/".join(key), result["system"], result["seed"], metric, last)
            continue
        grouped.setdefault(key, {}).setdefault(result["system"], []).append(
            (int(result["seed"]), value))
    summary = {}
    for key, by_system in grouped.items():
        summary[key] = {}
        for system, pairs in by_system.items():
            pairs.sort()
            summary[key][system] = Cell.from_values([v for _, v in pairs], [s for s, _ in pairs])
    return summary


def welch_indistinguishable(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> bool:
    """True when a two-sided Welch t-test at level `alpha` cannot separate `a` from `b`.

    Uses `scipy.stats.ttest_ind(a, b, equal_var=False)` and returns `p >= alpha`. Cases where
    the test is undefined are decided by the means alone, never NaN:

    - fewer than 2 values in either sample: True iff the means are equal (within 1e-12);
    - every value identical within each sample (both variances zero): True iff the means
      are equal (within 1e-12).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"welch_indistinguishable needs values in both samples, "
                         f"got {a.size} and {b.size}")
    same_mean = bool(abs(a.mean() - b.mean()) <= 1e-12)
    if a.size < 2 or b.size < 2:
        return same_mean
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return same_mean
    with warnings.catch_warnings():  # scipy warns when one sample is constant; p is exact
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        p_value = stats.ttest_ind(a, b, equal_var=False).pvalue
    return bool(p_value >= alpha)


# ---------------------------------------------------------------------------------------
# Published numbers
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """A published results table: which rows and systems it has, and how it evaluated."""

    name: str
    source: str  # results source whose runs the table compares against
    rows: tuple[tuple[str, str, str], ...]  # (env, scenario, dataset), in the paper's order
    systems: tuple[str, ...]  # registry names, in the paper's column order
    eval_mode: str  # "stochastic" (sampled actions) or "greedy"
    caption: str
    metric: str = "episode_return_mean"  # final-evaluation key our runs are compared on


#: (source, env, scenario, dataset, system) -> published (mean, std).
PAPER: dict[tuple[str, str, str, str, str], tuple[float, float]] = {}
#: Paper table name -> PaperTable.
PAPER_TABLES: dict[str, PaperTable] = {}

_INSPO_SYSTEMS = ("bc", "omar", "alberdice", "cfcql", "omiga", "inspo")
_CPA_SYSTEMS = ("bc", "bcq", "cql", "maicq", "alberdice", "cpa_ar", "cpa_pa")
_SMAC_SYSTEMS = ("bc", "omar", "cfcql", "omiga", "inspo")


def _register(name: str, source: str, systems: tuple[str, ...], eval_mode: str, caption: str,
              blocks: Sequence[tuple[str, str, Mapping[str, Sequence[tuple[float, float]]]]],
              metric: str = "episode_return_mean") -> None:
    """Adds one paper table to PAPER_TABLES and its cells to PAPER.

    `blocks` holds (env, scenario, {dataset: one (mean, std) per system}) in paper order.
    """
    rows = []
    for env, scenario, by_dataset in blocks:
        for dataset, values in by_dataset.items():
            if len(values) != len(systems):
                raise ValueError(f"{name} {scenario}/{dataset}: {len(values)} values "
                                 f"for {len(systems)} systems")
            rows.append((env, scenario, dataset))
            for system, value in zip(systems, values):
                PAPER[(source, env, scenario, dataset, system)] = value
    PAPER_TABLES[name] = PaperTable(name, source, tuple(rows), systems, eval_mode, caption, metric)


_register("inspo-table1", "inspo", _INSPO_SYSTEMS, "stochastic",
          "InSPO Table 1: averaged test return on the XOR game (5 seeds).", [
              ("matrix", "xor", {
                  "A": ((0.00, 0.01), (1.00, 0.00), (1.00, 0.00), (-0.64, 0.71), (0.00, 0.01), (1.00, 0.00)),
                  "B": ((0.23, 0.01), (-2.00, 0.00), (1.00, 0.00), (-0.38, 0.11), (0.21, 0.03), (1.00, 0.00)),
                  "C": ((0.00, 0.01), (0.00, 0.00), (1.00, 0.00), (-0.73, 0.48), (0.05, 0.00), (1.00, 0.00)),
              }),
          ])

_register("inspo-table2", "inspo", _INSPO_SYSTEMS, "stochastic",
          "InSPO Table 2: averaged test return on the M-NE game (5 seeds).", [
              ("matrix", "m_ne", {
                  "Balanced": ((-9.79, 0.41), (20.00, 0.00), (20.00, 0.00), (20.00, 0.00), (20.00, 0.00), (20.00, 0.00)),
                  "Imbalanced": ((-3.47, 0.17), (5.00, 0.00), (5.00, 0.00), (5.00, 0.00), (5.00, 0.00), (20.00, 0.00)),
              }),
          ])

# The paper prints an unlabelled extra first value per row (-1.26, -4.56); the six
# labelled systems are the last six values (environments.md §2).
_register("inspo-table3", "inspo", _INSPO_SYSTEMS, "stochastic",
          "InSPO Table 3: averaged test return on Bridge (5 seeds).", [
              ("bridge", "bridge", {
                  "Optimal": ((-2.21, 0.90), (-6.01, 0.00), (-1.27, 0.03), (-12.75, 1.60), (-9.87, 0.68), (-1.26, 0.00)),
                  "Mixed": ((-5.88, 0.49), (-6.01, 0.00), (-1.29, 0.00), (-13.79, 1.78), (-13.45, 0.42), (-1.27, 0.01)),
              }),
          ])

# SMAC evaluates greedily (environments.md §0); the table reports test win rates.
_register("inspo-table4", "cfcql", _SMAC_SYSTEMS, "greedy",
          "InSPO Table 4: averaged test win rate on StarCraft II micromanagement (5 seeds).", [
              ("smac_v1", "2s3z", {
                  "Medium": ((0.16, 0.07), (0.15, 0.04), (0.40, 0.10), (0.23, 0.01), (0.23, 0.06)),
                  "Medium-Replay": ((0.33, 0.04), (0.24, 0.09), (0.55, 0.07), (0.42, 0.02), (0.58, 0.09)),
                  "Expert": ((0.97, 0.02), (0.95, 0.04), (0.99, 0.01), (0.98, 0.02), (0.99, 0.01)),
                  "Mixed": ((0.44, 0.06), (0.60, 0.04), (0.84, 0.09), (0.62, 0.03), (0.85, 0.04)),
              }),
              ("smac_v1", "3s_vs_5z", {
                  "Medium": ((0.08, 0.02), (0.00, 0.00), (0.28, 0.03), (0.02, 0.02), (0.17, 0.05)),
                  "Medium-Replay": ((0.01, 0.01), (0.00, 0.00), (0.12, 0.04), (0.02, 0.01), (0.10, 0.05)),
                  "Expert": ((0.98, 0.02), (0.64, 0.08), (0.99, 0.01), (0.98, 0.02), (0.99, 0.01)),
                  "Mixed": ((0.21, 0.04), (0.00, 0.00), (0.60, 0.14), (0.20, 0.06), (0.78, 0.09)),
              }),
              ("smac_v1", "5m_vs_6m", {
                  "Medium": ((0.28, 0.37), (0.19, 0.06), (0.29, 0.05), (0.25, 0.08), (0.28, 0.06)),
                  "Medium-Replay": ((0.18, 0.06), (0.03, 0.02), (0.22, 0.06), (0.16, 0.05), (0.24, 0.07)),
                  "Expert": ((0.82, 0.04), (0.33, 0.06), (0.84, 0.03), (0.74, 0.05), (0.79, 0.12)),
                  "Mixed": ((0.21, 0.12), (0.10, 0.10), (0.76, 0.07), (0.38, 0.23), (0.78, 0.06)),
              }),
              ("smac_v1", "6h_vs_8z", {
                  "Medium": ((0.40, 0.03), (0.04, 0.03), (0.41, 0.04), (0.34, 0.01), (0.43, 0.06)),
                  "Medium-Replay": ((0.11, 0.04), (0.00, 0.00), (0.21, 0.05), (0.11, 0.04), (0.23, 0.02)),
                  "Expert": ((0.60, 0.04), (0.01, 0.01), (0.70, 0.06), (0.54, 0.04), (0.74, 0.11)),
                  "Mixed": ((0.27, 0.06), (0.00, 0.00), (0.49, 0.08), (0.36, 0.06), (0.60, 0.12)),
              }),
          ], metric="win_rate")

# The SMAX stand-in (environments.md §5): Table 4's maps, datasets and systems on JaxMARL's
# SMAX, a different game, so no published values sit beside ours.
PAPER_TABLES["inspo-table4-smax"] = PaperTable(
    "inspo-table4-smax", "inspo",
    tuple(("smax", scenario, dataset) for _, scenario, dataset in PAPER_TABLES["inspo-table4"].rows),
    _SMAC_SYSTEMS, "greedy",
    "InSPO Table 4's layout on the SMAX stand-in: averaged test win rate (not the paper's game).",
    metric="win_rate")

# CPA's caption says "standard error"; the values are printed as mean ± spread like InSPO's.
_register("cpa-table1", "cpa", _CPA_SYSTEMS, "greedy",
          "CPA Table 1: mean performance over 5 seeds with deterministic policies.", [
              ("matrix", "xor", {
                  "AB+BA": ((0.80, 0.40), (0.00, 0.00), (0.40, 0.49), (0.00, 0.00), (1.00, 0.00), (1.00, 0.00), (1.00, 0.00)),
                  "AA+AB+BA": ((0.00, 0.00), (0.00, 0.00), (0.00, 0.00), (0.00, 0.00), (1.00, 0.00), (1.00, 0.00), (1.00, 0.00)),
                  "Complete": ((0.40, 0.49), (0.00, 0.00), (0.60, 0.49), (0.40, 0.49), (1.00, 0.00), (1.00, 0.00), (1.00, 0.00)),
              }),
              ("matrix", "permutation", {
                  "Poor": ((0.00, 0.00), (0.00, 0.00), (0.00, 0.00), (0.00, 0.00), (1.00, 0.00), (1.00, 0.00), (1.00, 0.00)),
                  "Medium": ((1.00, 0.00), (0.00, 0.00), (0.00, 0.00), (0.00, 0.00), (1.00, 0.00), (1.00, 0.00), (1.00, 0.00)),
                  "Good": ((0.40, 0.49), (0.00, 0.00), (0.20, 0.40), (0.00, 0.00), (1.00, 0.00), (1.00, 0.00), (1.00, 0.00)),
              }),
              ("bridge", "bridge", {
                  "Poor": ((-17.57, 7.85), (-11.54, 3.34), (-18.52, 1.54), (-12.80, 5.35), (-1.40, 0.26), (-1.27, 0.02), (-1.27, 0.02)),
                  "Medium": ((-9.04, 9.54), (-15.41, 2.30), (-15.62, 2.48), (-5.17, 3.48), (-1.29, 0.00), (-1.24, 0.00), (-1.24, 0.00)),
                  "Good": ((-4.03, 5.50), (-16.23, 1.08), (-4.00, 5.52), (-3.13, 3.77), (-1.27, 0.03), (-1.24, 0.00), (-1.24, 0.00)),
              }),
              ("sensor", "sensor", {
                  "Poor": ((15.91, 1.75), (4.43, 1.77), (0.54, 0.75), (0.00, 0.00), (15.23, 0.79), (28.86, 0.19), (28.39, 0.72)),
                  "Medium": ((20.20, 5.38), (6.22, 7.21), (0.12, 0.23), (0.00, 0.00), (23.83, 0.23), (28.95, 0.62), (28.71, 0.32)),
                  "Good": ((28.32, 0.28), (4.62, 2.79), (12.24, 5.92), (0.00, 0.00), (17.00, 1.66), (29.67, 0.35), (29.22, 0.72)),
              }),
              ("aloha", "aloha", {
                  "Poor": ((2.25, 1.30), (1.80, 1.94), (31.15, 9.33), (20.20, 11.43), (49.24, 0.55), (74.43, 0.60), (73.12, 0.51)),
                  "Medium": ((1.52, 0.13), (2.50, 4.00), (13.53, 7.21), (4.71, 1.90), (49.42, 0.90), (74.85, 0.31), (73.25, 0.63)),
                  "Good": ((1.61, 0.11), (0.00, 0.00), (14.19, 3.58), (0.99, 0.50), (48.31, 1.69), (76.12, 0.63), (75.34, 0.84)),
              }),
          ])


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


def _rank(name: str, order: Sequence[str]) -> tuple[int, str]:
    """Sort key: position in `order` if known, else after all known names, by name."""
    return (order.index(name) if name in order else len(order), name)


def _row_sort_key(key: RowKey) -> tuple:
    source, env, scenario, dataset = key
    return (_rank(source, SOURCE_ORDER), _rank(env, ENV_ORDER),
            _rank(scenario, SCENARIO_ORDER), _rank(dataset, DATASET_ORDER))


def _number(x: float) -> str:
    """Two decimals, without a negative zero."""
    text = f"{x:.2f}"
    return "0.00" if text == "-0.00" else text


def _marks(cells: Mapping[str, Cell | None]) -> tuple[set[str], set[str]]:
    """(bold, starred) systems of one row.

    Bold: every cell whose mean, at two decimals, equals the best mean (ties all bold, as
    in the papers). Star: every other cell that `welch_indistinguishable` cannot separate
    from the best cell (the first with the highest mean).
    """
    present = {s: c for s, c in cells.items() if c is not None}
    if not present:
        return set(), set()
    best = max(present.values(), key=lambda c: c.mean)
    bold = {s for s, c in present.items() if _number(c.mean) == _number(best.mean)}
    star = {s for s, c in present.items()
            if s not in bold and welch_indistinguishable(c.values, best.values)}
    return bold, star


def _latex_escape(text: str) -> str:
    """Escapes the LaTeX specials that system, scenario and dataset names may hold."""
    for char in ("&", "%", "$", "#", "_", "{", "}"):
        text = text.replace(char, "\\" + char)
    return text


def _cell_text(cell: Cell | None, paper: tuple[float, float] | None, bold: bool, star: bool,
               fmt: str) -> str:
    """One markdown or LaTeX cell: `mean ± std`, bold or starred, then the paper value."""
    pm = " $\\pm$ " if fmt == "latex" else " ± "
    if cell is None:
        text = "--" if fmt == "latex" else MISSING
    else:
        text = f"{_number(cell.mean)}{pm}{_number(cell.std)}"
        if bold:
            text = f"\\textbf{{{text}}}" if fmt == "latex" else f"**{text}**"
        elif star:
            text += "*"
    if paper is not None:
        text += f" (paper: {_number(paper[0])}{pm}{_number(paper[1])})"
    return text


def _row_labels(keys: Sequence[RowKey]) -> tuple[list[str], list[tuple[str, ...]]]:
    """Label columns for the rows: (scenario, dataset), widened until the labels are unique."""
    for width in (2, 3, 4):
        labels = [key[-width:] for key in keys]
        if len(set(labels)) == len(labels):
            break
    names = ["source", "env", "scenario", "dataset"][-width:]
    return names, labels


def _csv_table(grid: Sequence[tuple], systems: Sequence[str]) -> str:
    """One CSV line per (row, system); `best` and `star` as 0/1, empty fields when absent."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["source", "env", "scenario", "dataset", "system", "mean", "std", "n",
                     "best", "star", "paper_mean", "paper_std"])
    for key, cells, published, bold, star in grid:
        for s in systems:
            cell, paper = cells[s], published[s]
            ours = ["", "", 0] if cell is None else [repr(cell.mean), repr(cell.std), cell.n]
            theirs = ["", ""] if paper is None else list(paper)
            writer.writerow([*key, s, *ours, int(s in bold), int(s in star), *theirs])
    return out.getvalue()


def _markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table: header, separator, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in body:
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in row) + " |")
    return "\n".join(lines) + "\n"


def _latex_table(n_labels: int, header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A booktabs `tabular`: label columns left-aligned, system columns centred."""
    lines = ["\\begin{tabular}{" + "l" * n_labels + "c" * (len(header) - n_labels) + "}",
             "\\toprule", " & ".join(_latex_escape(h) for h in header) + " \\\\", "\\midrule"]
    for row in body:
        labels = [_latex_escape(text) for text in row[:n_labels]]
        lines.append(" & ".join([*labels, *row[n_labels:]]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _render(keys: Sequence[RowKey], systems: Sequence[str],
            summary: Mapping[RowKey, Mapping[str, Cell]], fmt: str, paper: bool) -> str:
    """Renders rows `keys` by columns `systems` in `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
    grid = []  # (key, cells, paper values, bold, star) per row
    for key in keys:
        cells = {s: summary.get(key, {}).get(s) for s in systems}
        published = {s: PAPER.get((*key, s)) if paper else None for s in systems}
        grid.append((key, cells, published, *_marks(cells)))
    if fmt == "csv":
        return _csv_table(grid, systems)

    label_names, labels = _row_labels(keys)
    body = []
    for label, (_, cells, published, bold, star) in zip(labels, grid):
        texts = [_cell_text(cells[s], published[s], s in bold, s in star, fmt) for s in systems]
        body.append([*label, *texts])
    header = [*label_names, *systems]
    if fmt == "markdown":
        return _markdown_table(header, body)
    return _latex_table(len(label_names), header, body)


def _order_systems(systems: Iterable[str]) -> list[str]:
    """Known systems in the papers' column order, then the rest sorted."""
    return sorted(set(systems), key=lambda s: _rank(s, SYSTEM_ORDER))


def paper_eval_mode(source: str, env: str, scenario: str, dataset: str) -> str | None:
    """How the paper table holding this row evaluated ("greedy" or "stochastic"), or None
    for a row no paper table holds."""
    for table in PAPER_TABLES.values():
        if table.source == source and (env, scenario, dataset) in table.rows:
            return table.eval_mode
    return None


def paper_mode_if_other(ours: str | None, source: str, env: str, scenario: str,
                        dataset: str) -> str | None:
    """The paper table's evaluation mode for this row when a run evaluated with `ours` differs
    from it; None when they agree or either is unknown."""
    paper = paper_eval_mode(source, env, scenario, dataset)
    return paper if ours is not None and paper is not None and ours != paper else None


def warn_eval_modes(results: Iterable[Mapping]) -> list[Mapping]:
    """Warns once about the runs whose recorded `system.eval_mode` is not the mode of the
    paper table their row belongs to (their cells cannot be read against the printed
    paper values); returns those runs."""
    off = []
    for r in results:
        ours = (r.get("config") or {}).get("system", {}).get("eval_mode")
        paper = paper_mode_if_other(ours, r["source"], r["env"], r["scenario"], r["dataset"])
        if paper:
            off.append((r, ours, paper))
    if off:
        r, ours, paper = off[0]
        logging.warning("%d runs were evaluated otherwise than their paper table, so their cells do "
                        "not compare with the paper values beside them; e.g. %s %s/%s/%s/%s seed %s: "
                        "%s, the paper %s (rerun with --config.system.eval_mode=%s)", len(off),
                        r["system"], r["source"], r["env"], r["scenario"], r["dataset"], r["seed"],
                        ours, paper, paper)
    return [r for r, _, _ in off]


def make_table(results: Iterable[Mapping], source: str | None = None, env: str | None = None,
               systems: Sequence[str] | None = None, fmt: str = "markdown", paper: bool = True,
               metric: str = "episode_return_mean", last: int = 1) -> str:
    """Table of final `metric` (mean ± std over seeds) per (scenario, dataset) row and system.

    Rows are every (scenario, dataset) with results (env and source columns are added
    only when needed to tell rows apart), in the papers' order where known. Columns are
    `systems` in the given order, else every system found, paper systems first in paper
    order. The best mean is bold, cells Welch cannot separate from it get `*`, missing
    cells show `–`, and with `paper=True` published values follow as `(paper: m ± s)`
    (runs evaluated otherwise than their paper table are warned about, `warn_eval_modes`).
    `fmt` is "markdown", "latex" or "csv" (one line per cell, with `best`/`star` as 0/1).
    `last` > 1 averages each run over its last evaluations (`run_value`).
    """
    selected = [r for r in results
                if (source is None or r["source"] == source) and (env is None or r["env"] == env)]
    if not selected:
        raise ValueError(f"no results to tabulate for source={source!r}, env={env!r}")
    if paper:
        warn_eval_modes(selected)
    summary = summarise(selected, metric, last)
    keys = sorted(summary, key=_row_sort_key)
    if systems is None:
        systems = _order_systems(s for by_system in summary.values() for s in by_system)
    return _render(keys, list(systems), summary, fmt, paper)


def table_for(paper_table_name: str, results_dir, fmt: str = "markdown",
              metric: str | None = None, last: int = 1) -> str:
    """One paper table's rows and systems, ours beside the published values.

    Systems or rows without results still appear, as `–`. `metric` defaults to the
    table's own (`PaperTable.metric`); `last` as in `run_value`.
    """
    if paper_table_name not in PAPER_TABLES:
        raise KeyError(f"unknown paper table {paper_table_name!r}; "
                       f"known: {', '.join(PAPER_TABLES)}")
    table = PAPER_TABLES[paper_table_name]
    results = load_results(results_dir, source=table.source)
    warn_eval_modes(results)
    summary = summarise(results, metric or table.metric, last)
    keys = [(table.source, *row) for row in table.rows]
    return _render(keys, table.systems, summary, fmt, paper=True)


# ---------------------------------------------------------------------------------------
# marl-eval export
# ---------------------------------------------------------------------------------------


def _episode_values(evaluation: Mapping, metric: str, where: str) -> list[float]:
    """Per-episode values of `metric` in one evaluation (`<metric>s`), else [mean]."""
    if isinstance(evaluation.get(f"{metric}s"), list):
        return [float(v) for v in evaluation[f"{metric}s"]]
    for key in (f"{metric}_mean", metric):
        if key in evaluation:
            return [float(evaluation[key])]
    raise ValueError(f"{where} has none of {metric}s, {metric}_mean, {metric}")


def export_marl_eval(results_dir, out_path, metric: str = "episode_return",
                     source: str | None = None, env: str | None = None) -> Path:
    """Writes the results under `results_dir` in marl-eval's JSON layout (contract §7).

    `{env: {"<scenario>_<dataset>": {system: {"seed_<k>": {"step_<i>": {"step_count": step,
    metric: [per-episode values]}, ..., "absolute_metrics": {metric: [final values]}}}}}}`,
    one `step_<i>` per evaluation in order. Per-episode values come from `<metric>s`
    (`episode_returns`); an evaluation without them contributes `[<metric>_mean]`.
    """
    exported: dict = {}
    for result in load_results(results_dir, source=source, env=env):
        env_name, system, run_name = result["env"], result["system"], f"seed_{result['seed']}"
        task = f"{result['scenario']}_{result['dataset']}"
        where = f"{result['source']}/{env_name}/{task}/{system}/{run_name}"
        runs = exported.setdefault(env_name, {}).setdefault(task, {}).setdefault(system, {})
        if run_name in runs:
            raise ValueError(f"{where} appears under two sources; pass source= to export one")
        run = {}
        for i, evaluation in enumerate(result["evaluations"]):
            if "step" not in evaluation:
                raise ValueError(f"{where} evaluation {i} has no 'step'")
            values = _episode_values(evaluation, metric, f"{where} evaluation {i}")
            run[f"step_{i}"] = {"step_count": int(evaluation["step"]), metric: values}
        final = _episode_values(result["final"], metric, f"{where} final")
        run["absolute_metrics"] = {metric: final}
        runs[run_name] = run
    return write_json_atomic(out_path, exported)
