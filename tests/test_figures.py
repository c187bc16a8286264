"""Paper figures: panels per figure, drawing to PNG and PDF, unknown names refused."""

from pathlib import Path

import numpy as np
import pytest

from og_marl_inspo.figures import Panel, _draw, _panels, reproduce_figure
from og_marl_inspo.reporting import save_figure


def test_fig5_panels_are_the_ablations_in_their_own_result_dirs():
    entropy, spo, spo_mu = _panels("inspo-fig5")
    assert (entropy.scenario, entropy.dataset, entropy.overrides) == (
        "m_ne", "Imbalanced", ("system.entropy=False",))
    assert (spo.scenario, spo.dataset, spo.overrides) == ("xor", "B", ("system.sequential=False",))
    assert spo_mu.overrides == ("system.sequential=False", "system.simultaneous_ratio=behaviour")
    assert len({entropy.subdir, spo.subdir, spo_mu.subdir} - {""}) == 3


def test_fig3_draws_every_registered_system_of_table1_on_xor_b():
    panels = _panels("inspo-fig3")
    assert {"bc", "inspo"} <= {p.system for p in panels}
    assert all((p.scenario, p.dataset, p.subdir) == ("xor", "B", "") for p in panels)


def test_heatmaps_are_written_as_png_and_pdf(tmp_path):
    drawn = [(Panel("xor", "inspo", "xor", "B"), np.array([[0.0, 0.5], [0.5, 0.0]]), [1.0, 1.0]),
             (Panel("m-ne", "inspo", "m_ne", "Imbalanced"), np.eye(3) / 3, [5.0])]
    paths = save_figure(_draw(drawn), tmp_path / "figures" / "fig")
    assert [p.name for p in paths] == ["fig.png", "fig.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert not list((tmp_path / "figures").glob(".*tmp"))


def test_unknown_figure_is_refused():
    with pytest.raises(ValueError, match="unknown figure 'inspo-fig9'"):
        reproduce_figure("inspo-fig9", results_dir="unused")


def test_diversity_figure_averages_each_beta_over_seeds_and_draws_both_panels(tmp_path, monkeypatch):
    import json

    from og_marl_inspo import sweep as sweep_module

    from og_marl_inspo.figures import DIVERSITY_FIGURES, reproduce_diversity_figure
    from og_marl_inspo.reporting import results_path

    _, _, _, n, thresholds = DIVERSITY_FIGURES["cpa-fig3"]
    assert thresholds(n) == pytest.approx((1.0, 1 / 3.2, 0.25, 1 / 6))  # the caption's beta_1..4
    for k in range(1, 5):  # finished runs only: nothing is trained, only read and drawn
        for system in ("cpa_ar", "cpa_pa"):
            for seed in (0, 1):
                final = {"episode_return_mean": 1.0 - 0.1 * seed,
                         "policy_average_entropy": 0.25 * k + (0.5 if system == "cpa_pa" else 0.0)}
                result = {"system": system, "source": "cpa", "env": "matrix", "scenario": "permutation",
                          "dataset": "Poor", "seed": seed, "evaluations": [], "final": final}
                path = results_path(tmp_path / "cpa-fig3" / f"beta_{k}", "cpa", "matrix", "permutation",
                                    "Poor", system, seed)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result))
    calls = []  # (system, beta bar, overrides, train_steps) of every sweep the figure asks for
    monkeypatch.setattr(sweep_module, "sweep", lambda runs, out, workers, overrides, train_steps=None, **_:
                        calls.append((runs[0].system, Path(out).name, overrides, train_steps)) or [])
    report = reproduce_diversity_figure("cpa-fig3", seeds=2, results_dir=str(tmp_path),
                                        rel_dir=str(tmp_path / "vaults"))
    teacher = (f"system.teacher_checkpoint={tmp_path}/cpa-fig3/beta_1/{{source}}/{{env}}/{{scenario}}/"
               "{dataset}/cpa_ar/seed_{seed}_checkpoints")
    assert calls[0] == ("cpa_ar", "beta_1", ["system.beta=1.0", "system.eval_mode=stochastic"], None)
    assert calls[2] == ("cpa_ar", "beta_2", ["system.beta=0.3125", "system.eval_mode=stochastic", teacher], 0)
    assert calls[7] == ("cpa_pa", "beta_4", ["system.beta=0.16666666666666666", "system.eval_mode=stochastic",
                                             "system.pool_size=32", "system.joint_decoding=repertoire",
                                             teacher], 3000)  # 3800 - 800 AR steps
    assert len(calls) == 8
    lines = report.splitlines()
    assert lines[0].endswith("cpa-fig3.png, " + str(tmp_path / "figures" / "cpa-fig3.pdf"))
    assert "  cpa_ar beta_2 = 0.312: return 0.95 +- 0.05, entropy 0.50 +- 0.00 bits over 2 seeds" in lines
    assert "  cpa_pa beta_4 = 0.167: return 0.95 +- 0.05, entropy 1.50 +- 0.00 bits over 2 seeds" in lines
    assert len(lines) == 1 + 8
    assert (tmp_path / "figures" / "cpa-fig3.png").stat().st_size > 1000

    calls.clear()  # a reading of Eq. 8 chosen on the command line reaches every run, last
    reproduce_diversity_figure("cpa-fig3", seeds=2, results_dir=str(tmp_path), rel_dir=str(tmp_path / "vaults"),
                               overrides=["system.threshold_weighting=renormalised"])
    assert len(calls) == 8
    assert all(overrides[-1] == "system.threshold_weighting=renormalised" for _, _, overrides, _ in calls)


def test_diversity_figure_stops_when_its_ar_teachers_fail(tmp_path, monkeypatch):
    from og_marl_inspo import sweep as sweep_module
    from og_marl_inspo.data import collect
    from og_marl_inspo.figures import reproduce_diversity_figure

    calls = []
    monkeypatch.setattr(collect, "build_datasets", lambda *args, **kwargs: None)
    monkeypatch.setattr(sweep_module, "sweep", lambda runs, *args, **kwargs:
                        calls.append(runs[0].system) or [f"{runs[0]}: training diverged at step 1201"])
    with pytest.raises(RuntimeError, match="cpa-fig4: 1 AR teachers failed:\n.*diverged at step 1201"):
        reproduce_diversity_figure("cpa-fig4", seeds=1, results_dir=str(tmp_path), rel_dir=str(tmp_path))
    assert calls == ["cpa_ar"]  # nothing was started on top of the missing teachers
