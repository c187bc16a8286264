"""Tests for og_marl_inspo.reporting, on hand-made result files in tmp_path."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from og_marl_inspo import reporting


def _result(system, seed, final, source="inspo", env="matrix", scenario="xor", dataset="B",
            returns=None):
    """A minimal result file body with two evaluations, the last equal to `final`."""
    returns = [final - 0.5, final + 0.5] if returns is None else returns
    last = {"step": 100, "episode_return_mean": final, "episode_return_std": 0.5,
            "episodes": len(returns), "episode_returns": returns}
    first = {"step": 0, "episode_return_mean": 0.0, "episode_return_std": 0.0,
             "episodes": 2, "episode_returns": [0.0, 0.0]}
    return {"system": system, "source": source, "env": env, "scenario": scenario,
            "dataset": dataset, "seed": seed, "config": {}, "versions": {},
            "evaluations": [first, last], "final": last, "wall_time_s": 1.0,
            "train_steps_per_second": 10.0}


def _write(results_dir, result):
    path = reporting.results_path(results_dir, result["source"], result["env"], result["scenario"],
                                  result["dataset"], result["system"], result["seed"])
    reporting.write_json_atomic(path, result)
    return path


def _runs(system, values, **kwargs):
    return [_result(system, seed, v, **kwargs) for seed, v in enumerate(values)]


# ----------------------------------------------------------------------------- files


def test_results_path_layout(tmp_path):
    path = reporting.results_path(tmp_path, "cpa", "bridge", "bridge", "Good", "cpa_ar", 3)
    assert path == tmp_path / "cpa" / "bridge" / "bridge" / "Good" / "cpa_ar" / "seed_3.json"


def test_write_json_atomic_replaces_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "deep" / "dir" / "x.json"
    reporting.write_json_atomic(path, {"a": 1})
    reporting.write_json_atomic(path, {"b": [1.5, 2], "c": np.float32(0.5), "d": np.arange(2)})
    assert json.loads(path.read_text()) == {"b": [1.5, 2], "c": 0.5, "d": [0, 1]}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_write_json_atomic_keeps_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "x.json"
    reporting.write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        reporting.write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_load_results_filters_sorts_and_skips_bad_files(tmp_path):
    for r in [_result("inspo", 1, 1.0), _result("bc", 0, 0.2), _result("inspo", 0, 1.0),
              _result("cpa_ar", 0, 1.0, source="cpa", dataset="AA+AB+BA"),
              _result("inspo", 0, 20.0, scenario="m_ne", dataset="Imbalanced"),
              _result("cpa_ar", 0, -1.2, source="cpa", env="bridge", scenario="bridge",
                      dataset="Good")]:
        _write(tmp_path, r)
    corrupt = reporting.results_path(tmp_path, "inspo", "matrix", "xor", "B", "omar", 0)
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text('{"system": "omar", ')
    incomplete = reporting.results_path(tmp_path, "inspo", "matrix", "xor", "B", "omiga", 0)
    incomplete.parent.mkdir(parents=True)
    incomplete.write_text(json.dumps({"system": "omiga", "seed": 0}))

    assert len(reporting.load_results(tmp_path)) == 6
    inspo = reporting.load_results(tmp_path, source="inspo")
    assert [(r["scenario"], r["system"], r["seed"]) for r in inspo] == [
        ("m_ne", "inspo", 0), ("xor", "bc", 0), ("xor", "inspo", 0), ("xor", "inspo", 1)]
    cpa_matrix = reporting.load_results(tmp_path, source="cpa", env="matrix")
    assert [(r["env"], r["system"]) for r in cpa_matrix] == [("matrix", "cpa_ar")]
    assert reporting.load_results(tmp_path, env="bridge")[0]["source"] == "cpa"
    assert reporting.load_results(tmp_path / "absent") == []


# ----------------------------------------------------------------------------- statistics


def test_summarise_mean_population_std_and_seed_order():
    results = [_result("bc", 2, 3.0), _result("bc", 0, 1.0), _result("bc", 1, 2.0),
               _result("inspo", 0, 5.0)]
    summary = reporting.summarise(results)
    cell = summary[("inspo", "matrix", "xor", "B")]["bc"]
    assert cell.values == [1.0, 2.0, 3.0]
    assert cell.seeds == [0, 1, 2]
    assert cell.mean == pytest.approx(2.0)
    assert cell.std == pytest.approx(np.sqrt(2.0 / 3.0))  # ddof=0
    assert cell.n == 3
    assert summary[("inspo", "matrix", "xor", "B")]["inspo"].std == 0.0


def test_summarise_other_metric_and_missing_metric():
    results = _runs("bc", [0.1, 0.3])
    results[0]["final"]["policy_entropy"] = 0.7
    cells = reporting.summarise(results, metric="policy_entropy")
    assert cells[("inspo", "matrix", "xor", "B")]["bc"].values == [0.7]


def test_last_k_evaluations_average_the_end_of_each_run():
    # _result's evaluations: 0.0 at step 0, then `final` at step 100, which is the final one.
    results = _runs("bcq", [2.0, 4.0])
    results[1]["evaluations"].insert(1, {"step": 50, "episode_return_mean": -10.0})
    assert reporting.run_value(results[0]) == 2.0
    assert reporting.run_value(results[0], last=2) == pytest.approx(1.0)  # (0 + 2) / 2
    assert reporting.run_value(results[1], last=2) == pytest.approx(-3.0)  # (-10 + 4) / 2
    cell = reporting.summarise(results, last=2)[("inspo", "matrix", "xor", "B")]["bcq"]
    assert cell.values == pytest.approx([1.0, -3.0])
    assert "-1.00 ± 2.00" in reporting.make_table(results, last=2, paper=False)
    with pytest.raises(ValueError, match="bcq seed 0: last=3 but the run has 2 evaluations"):
        reporting.summarise(results, last=3)
    with pytest.raises(ValueError, match="last must be >= 1"):
        reporting.run_value(results[0], last=0)


def test_welch_separates_clear_gap_but_not_overlap():
    best = [1.0, 1.0, 1.0, 1.0, 1.0]
    assert not reporting.welch_indistinguishable([0.0, 0.01, 0.02, 0.0, 0.01], best)
    assert reporting.welch_indistinguishable([0.2, 0.9, 0.5, 0.1, 0.8], [0.3, 1.0, 0.6, 0.4, 0.9])


def test_welch_edge_cases_are_defined():
    assert reporting.welch_indistinguishable([1.0, 1.0, 1.0], [1.0, 1.0])
    assert not reporting.welch_indistinguishable([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert reporting.welch_indistinguishable([0.5], [0.5])
    assert not reporting.welch_indistinguishable([0.5], [0.2, 0.8, 0.4])
    with pytest.raises(ValueError):
        reporting.welch_indistinguishable([], [1.0])


# ----------------------------------------------------------------------------- tables


@pytest.fixture
def xor_b():
    """XOR B: inspo best, omiga clearly worse, bc overlapping with inspo."""
    return (_runs("inspo", [1.0, 1.0, 1.0, 1.0, 0.95])
            + _runs("omiga", [0.0, 0.01, 0.02, 0.0, 0.01])
            + _runs("bc", [0.2, 1.0, 0.9, 1.1, 0.8])
            + _runs("my_system", [0.5, 0.5]))


def _markdown_cells(table):
    """Header and data rows of a markdown table as lists of stripped cells."""
    lines = table.strip().splitlines()
    split = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return split[0], split[1], split[2:]


def test_markdown_table_bold_star_and_paper(xor_b):
    table = reporting.make_table(xor_b, source="inspo", fmt="markdown")
    header, separator, rows = _markdown_cells(table)
    assert header == ["scenario", "dataset", "bc", "omiga", "inspo", "my_system"]
    assert all(set(c) <= {"-", ":"} and c for c in separator) and len(separator) == len(header)
    (row,) = rows
    cells = dict(zip(header, row))
    assert cells["scenario"] == "xor" and cells["dataset"] == "B"
    assert cells["inspo"].startswith("**0.99 ± 0.02**")
    assert cells["inspo"].endswith("(paper: 1.00 ± 0.00)")
    assert cells["bc"] == "0.80 ± 0.32* (paper: 0.23 ± 0.01)"
    assert cells["omiga"] == "0.01 ± 0.01 (paper: 0.21 ± 0.03)"
    assert cells["my_system"] == "0.50 ± 0.00"  # Welch on 2 vs 5 values: separated
    no_paper = reporting.make_table(xor_b, source="inspo", paper=False)
    assert "paper" not in no_paper


def test_table_ties_all_bold_and_missing_cells(tmp_path):
    results = (_runs("inspo", [1.0, 1.0, 1.0]) + _runs("alberdice", [1.0, 1.0, 1.0])
               + _runs("omar", [1.0, 1.0, 0.97]) + _runs("bc", [0.0, 0.0, 0.0])
               + _runs("bc", [0.1, 0.2], dataset="A"))
    table = reporting.make_table(results, systems=["bc", "omar", "alberdice", "inspo"], paper=False)
    header, _, rows = _markdown_cells(table)
    by_dataset = {row[1]: dict(zip(header, row)) for row in rows}
    assert list(by_dataset) == ["A", "B"]
    assert by_dataset["B"]["inspo"] == by_dataset["B"]["alberdice"] == "**1.00 ± 0.00**"
    assert by_dataset["B"]["omar"] == "0.99 ± 0.01*"
    assert by_dataset["B"]["bc"] == "0.00 ± 0.00"
    assert by_dataset["A"]["inspo"] == reporting.MISSING
    assert by_dataset["A"]["bc"] == "**0.15 ± 0.05**"


def test_latex_table(xor_b):
    table = reporting.make_table(xor_b, source="inspo", fmt="latex")
    assert table.startswith("\\begin{tabular}{llcccc}")
    for token in ("\\toprule", "\\midrule", "\\bottomrule", "\\end{tabular}", "my\\_system",
                  "\\textbf{0.99 $\\pm$ 0.02}", "(paper: 0.23 $\\pm$ 0.01)"):
        assert token in table
    assert "±" not in table


def test_csv_table(xor_b):
    rows = list(csv.DictReader(io.StringIO(reporting.make_table(xor_b, fmt="csv"))))
    assert len(rows) == 4  # one row (xor, B) x four systems
    by_system = {r["system"]: r for r in rows}
    assert by_system["inspo"]["best"] == "1" and by_system["inspo"]["star"] == "0"
    assert by_system["bc"]["star"] == "1" and by_system["omiga"]["star"] == "0"
    assert float(by_system["bc"]["paper_mean"]) == 0.23
    assert float(by_system["omiga"]["mean"]) == pytest.approx(0.008)
    assert by_system["my_system"]["paper_mean"] == "" and by_system["my_system"]["n"] == "2"


def test_make_table_rejects_bad_input(xor_b):
    with pytest.raises(ValueError, match="html"):
        reporting.make_table(xor_b, fmt="html")
    with pytest.raises(ValueError, match="cpa"):
        reporting.make_table(xor_b, source="cpa")


def test_table_for_shows_every_paper_row_and_system(tmp_path):
    for r in _runs("inspo", [1.0, 1.0]) + _runs("bc", [0.2, 0.25]):
        _write(tmp_path, r)
    header, _, rows = _markdown_cells(reporting.table_for("inspo-table1", tmp_path, "markdown"))
    assert header == ["scenario", "dataset", *reporting.PAPER_TABLES["inspo-table1"].systems]
    assert [row[1] for row in rows] == ["A", "B", "C"]
    cells = {row[1]: dict(zip(header, row)) for row in rows}
    assert cells["B"]["omar"] == f"{reporting.MISSING} (paper: -2.00 ± 0.00)"
    assert cells["B"]["inspo"] == "**1.00 ± 0.00** (paper: 1.00 ± 0.00)"
    assert cells["A"]["inspo"] == f"{reporting.MISSING} (paper: 1.00 ± 0.00)"
    csv_rows = list(csv.DictReader(io.StringIO(reporting.table_for("cpa-table1", tmp_path, "csv"))))
    assert len(csv_rows) == 15 * 7
    with pytest.raises(KeyError, match="inspo-table1"):
        reporting.table_for("inspo-table9", tmp_path, "markdown")


def test_tables_warn_about_runs_evaluated_otherwise_than_their_paper_table(tmp_path, caplog):
    def run(system, seed, mode):
        r = _result(system, seed, -15.5, source="cpa", env="bridge", scenario="bridge", dataset="Poor")
        r["config"] = {"system": {"eval_mode": mode}}
        return r

    sampled = [run("alberdice", 0, "stochastic"), run("alberdice", 1, "stochastic")]
    greedy = [run("bc", 0, "greedy"), run("bc", 1, "greedy")]
    for r in sampled + greedy:
        _write(tmp_path, r)
    assert reporting.paper_eval_mode("cpa", "bridge", "bridge", "Poor") == "greedy"
    assert reporting.paper_eval_mode("inspo", "bridge", "bridge", "Mixed") == "stochastic"
    assert reporting.paper_eval_mode("cpa", "bridge", "bridge", "NotInAPaper") is None
    assert reporting.warn_eval_modes(greedy) == []
    assert reporting.warn_eval_modes(sampled + greedy) == sampled

    caplog.clear()
    reporting.table_for("cpa-table1", tmp_path, "markdown")
    assert ("2 runs were evaluated otherwise than their paper table" in caplog.text
            and "alberdice cpa/bridge/bridge/Poor seed 0: stochastic, the paper greedy" in caplog.text
            and "--config.system.eval_mode=greedy" in caplog.text)
    caplog.clear()
    reporting.make_table(sampled + greedy, source="cpa")
    assert "2 runs were evaluated otherwise" in caplog.text
    caplog.clear()
    reporting.make_table(sampled + greedy, source="cpa", paper=False)  # no paper values, no warning
    reporting.make_table(greedy, source="cpa")
    assert "evaluated otherwise" not in caplog.text


# ----------------------------------------------------------------------------- marl-eval


def test_export_marl_eval_layout(tmp_path):
    results_dir, out = tmp_path / "results", tmp_path / "out" / "marl_eval.json"
    _write(results_dir, _result("inspo", 0, 1.0, returns=[1.0, 1.0, 1.0]))
    no_episodes = _result("bc", 3, 0.25)
    for evaluation in no_episodes["evaluations"]:
        del evaluation["episode_returns"]
    _write(results_dir, no_episodes)
    _write(results_dir, _result("cpa_ar", 0, -1.24, source="cpa", env="bridge",
                                scenario="bridge", dataset="Good"))

    assert reporting.export_marl_eval(results_dir, out) == out
    data = json.loads(out.read_text())
    assert set(data) == {"matrix", "bridge"}
    run = data["matrix"]["xor_B"]["inspo"]["seed_0"]
    assert list(run) == ["step_0", "step_1", "absolute_metrics"]
    assert run["step_0"] == {"step_count": 0, "episode_return": [0.0, 0.0]}
    assert run["step_1"] == {"step_count": 100, "episode_return": [1.0, 1.0, 1.0]}
    assert run["absolute_metrics"] == {"episode_return": [1.0, 1.0, 1.0]}
    fallback = data["matrix"]["xor_B"]["bc"]["seed_3"]
    assert fallback["step_1"]["episode_return"] == [0.25]
    assert fallback["absolute_metrics"]["episode_return"] == [0.25]
    assert data["bridge"]["bridge_Good"]["cpa_ar"]["seed_0"]["step_1"]["step_count"] == 100


# ----------------------------------------------------------------------------- paper numbers


@pytest.mark.parametrize("key, value", [
    (("inspo", "matrix", "xor", "B", "bc"), (0.23, 0.01)),
    (("inspo", "matrix", "xor", "A", "cfcql"), (-0.64, 0.71)),
    (("inspo", "matrix", "m_ne", "Imbalanced", "inspo"), (20.0, 0.0)),
    (("inspo", "matrix", "m_ne", "Balanced", "bc"), (-9.79, 0.41)),
    (("inspo", "bridge", "bridge", "Optimal", "alberdice"), (-1.27, 0.03)),
    (("inspo", "bridge", "bridge", "Mixed", "omiga"), (-13.45, 0.42)),
    (("cpa", "matrix", "xor", "Complete", "cql"), (0.60, 0.49)),
    (("cpa", "matrix", "permutation", "Medium", "bc"), (1.00, 0.00)),
    (("cpa", "bridge", "bridge", "Poor", "cql"), (-18.52, 1.54)),
    (("cpa", "sensor", "sensor", "Good", "cpa_ar"), (29.67, 0.35)),
    (("cpa", "aloha", "aloha", "Good", "cpa_ar"), (76.12, 0.63)),
    (("cpa", "aloha", "aloha", "Poor", "maicq"), (20.20, 11.43)),
    (("cfcql", "smac_v1", "5m_vs_6m", "Medium", "bc"), (0.28, 0.37)),
    (("cfcql", "smac_v1", "6h_vs_8z", "Expert", "inspo"), (0.74, 0.11)),
])
def test_paper_spot_checks(key, value):
    assert reporting.PAPER[key] == value


def test_paper_tables_are_complete():
    expected = {"inspo-table1": (3, 6, "stochastic"), "inspo-table2": (2, 6, "stochastic"),
                "inspo-table3": (2, 6, "stochastic"), "inspo-table4": (16, 5, "greedy"),
                "cpa-table1": (15, 7, "greedy")}
    assert set(reporting.PAPER_TABLES) == set(expected) | {"inspo-table4-smax"}
    smax = reporting.PAPER_TABLES["inspo-table4-smax"]  # Table 4's layout on another game
    assert len(smax.rows) == 16 and {env for env, _, _ in smax.rows} == {"smax"}
    assert not any(key[1] == "smax" for key in reporting.PAPER)  # so no published values beside it
    for name, (n_rows, n_systems, mode) in expected.items():
        table = reporting.PAPER_TABLES[name]
        assert (len(table.rows), len(table.systems), table.eval_mode) == (n_rows, n_systems, mode)
        for row in table.rows:
            for system in table.systems:
                assert (table.source, *row, system) in reporting.PAPER
    assert len(reporting.PAPER) == sum(r * s for r, s, _ in expected.values())


def test_smac_table_matches_published_averages():
    # InSPO Table 4's last row: BC 0.38, OMAR 0.21, CFCQL 0.54, OMIGA 0.39, InSPO 0.55
    # (averaged from unrounded cells, hence the tolerance).
    table = reporting.PAPER_TABLES["inspo-table4"]
    published = {"bc": 0.38, "omar": 0.21, "cfcql": 0.54, "omiga": 0.39, "inspo": 0.55}
    for system, average in published.items():
        values = [reporting.PAPER[(table.source, *row, system)][0] for row in table.rows]
        assert np.mean(values) == pytest.approx(average, abs=0.01)


def test_import_needs_no_tensorflow():
    code = ("import sys, og_marl_inspo.reporting; "
            "assert 'tensorflow' not in sys.modules and 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
