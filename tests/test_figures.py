"""Paper figures: panels per figure, drawing to PNG and PDF, unknown names refused."""

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
