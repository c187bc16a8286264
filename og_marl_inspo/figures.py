"""The papers' figures: the runs each one needs, then the drawing (PNG and PDF).

- `inspo-fig3`: the final joint policy of every registered system of InSPO Table 1 on
  XOR dataset (b) (`B`), one heatmap per system (InSPO Fig. 3).
- `inspo-fig5`: the two ablations of InSPO Fig. 5: (a) InSPO without entropy
  (`entropy=False`) on M-NE Imbalanced, (b) InSPO with simultaneous updates
  (`sequential=False`, "w/o SPO") on XOR (b), and (b') the same with teammates held at
  the behaviour policy (`simultaneous_ratio=behaviour`, our other reading of the ablation).

A joint policy is drawn from a restored final checkpoint by sampling `samples` joint
actions of the one-step game with the system's own evaluation mode, so any system,
autoregressive ones included, is drawn the same way. Heatmaps show seed 0; titles give
the final return, mean +- std over the seeds. Ablation runs live under
`<results_dir>/<figure>/<variant>/` so they never mix with the tables' runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

ACTION_NAMES = "ABCDEFGH"


@dataclasses.dataclass(frozen=True)
class Panel:
    """One heatmap: a system (plus config overrides) trained on one matrix-game dataset."""

    title: str
    system: str
    scenario: str
    dataset: str
    overrides: Tuple[str, ...] = ()
    subdir: str = ""  # results sub-directory of this variant ("" = the tables' runs)


def joint_policy(system, environment, samples: int = 10_000, seed: int = 0) -> np.ndarray:
    """Frequencies of `samples` joint actions of a one-step game, shape (A,) * N."""
    n, a = environment.num_agents, environment.num_actions
    obs, legals, _ = environment.batch(samples, seed).reset()
    system.reset(samples)
    actions = system.act(obs, legals, np.random.default_rng(seed))  # (samples, N)
    counts = np.zeros((a,) * n)
    np.add.at(counts, tuple(actions.T), 1.0)
    return counts / samples


def _panels(figure: str) -> List[Panel]:
    from og_marl_inspo.registry import list_systems
    from og_marl_inspo.reporting import PAPER_TABLES

    if figure == "inspo-fig3":
        registered = set(list_systems())
        return [Panel(name, name, "xor", "B") for name in PAPER_TABLES["inspo-table1"].systems
                if name in registered]
    return [Panel("(a) InSPO w/o entropy, M-NE Imbalanced", "inspo", "m_ne", "Imbalanced",
                  ("system.entropy=False",), "no_entropy"),
            Panel("(b) InSPO w/o SPO, XOR (b)", "inspo", "xor", "B",
                  ("system.sequential=False",), "simultaneous"),
            Panel("(b') w/o SPO, teammates at mu, XOR (b)", "inspo", "xor", "B",
                  ("system.sequential=False", "system.simultaneous_ratio=behaviour"),
                  "simultaneous_behaviour")]


FIGURES = ("inspo-fig3", "inspo-fig5", "cpa-fig3", "cpa-fig4")


def reproduce_figure(figure: str, seeds: int = 5, results_dir: str = "results",
                     rel_dir: str = "vaults", workers: int = 1, progress: bool = False,
                     overrides: Sequence[str] = ()) -> str:
    """Train what the figure needs (finished runs are reused), draw it; return a summary.
    `overrides` ("FIELD=VALUE") go to every run, after the figure's own."""
    from og_marl_inspo.data.vault import available_uids
    from og_marl_inspo.data.collect import build_datasets
    from og_marl_inspo.launch import restore
    from og_marl_inspo.reporting import load_results, results_path, save_figure
    from og_marl_inspo.sweep import Run, sweep

    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}")
    if figure in DIVERSITY_FIGURES:
        return reproduce_diversity_figure(figure, seeds, results_dir, rel_dir, workers, progress,
                                          overrides)
    panels = _panels(figure)
    failures: List[str] = []
    for panel in panels:
        if panel.dataset not in available_uids(rel_dir, "inspo", "matrix", panel.scenario):
            build_datasets("inspo", "matrix", panel.scenario, [panel.dataset], rel_dir)
        runs = [Run(panel.system, "inspo", "matrix", panel.scenario, panel.dataset, seed)
                for seed in range(seeds)]
        failures += sweep(runs, str(Path(results_dir, panel.subdir)), workers,
                          overrides=["system.eval_mode=stochastic", *panel.overrides, *overrides],
                          rel_dir=rel_dir, progress=progress)
    if failures:
        raise RuntimeError(f"{figure}: {len(failures)} runs failed:\n" + "\n".join(failures))

    drawn: List[Tuple[Panel, np.ndarray, List[float]]] = []
    for panel in panels:
        root = Path(results_dir, panel.subdir)
        finals = [r["final"]["episode_return_mean"] for r in load_results(root, "inspo", "matrix")
                  if (r["scenario"], r["dataset"], r["system"]) == (panel.scenario, panel.dataset,
                                                                    panel.system)
                  and r["seed"] < seeds]
        system, environment = restore(results_path(root, "inspo", "matrix", panel.scenario,
                                                   panel.dataset, panel.system, 0))
        drawn.append((panel, joint_policy(system, environment), finals))
    paths = save_figure(_draw(drawn), Path(results_dir, "figures", figure))
    lines = [f"{figure}: " + ", ".join(str(p) for p in paths)]
    for panel, policy, finals in drawn:
        best = np.unravel_index(policy.argmax(), policy.shape)
        lines.append(f"  {panel.title}: return {np.mean(finals):.2f} +- {np.std(finals):.2f} over "
                     f"{len(finals)} seeds; seed 0 puts {policy.max():.2f} on "
                     f"({', '.join(ACTION_NAMES[i] for i in best)})")
    return "\n".join(lines)


def _draw(drawn: Sequence[Tuple[Panel, np.ndarray, Sequence[float]]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(drawn), figsize=(2.8 * len(drawn), 3.0), squeeze=False)
    for ax, (panel, policy, finals) in zip(axes[0], drawn):
        names = list(ACTION_NAMES[:policy.shape[0]])
        ax.imshow(policy, cmap="Blues", vmin=0.0, vmax=1.0)
        for (i, j), p in np.ndenumerate(policy):
            ax.text(j, i, f"{p:.2f}", ha="center", va="center",
                    color="white" if p > 0.6 else "black", fontsize=9)
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("agent 2")
        ax.set_ylabel("agent 1")
        ax.set_title(f"{panel.title}\nreturn {np.mean(finals):.2f} ± {np.std(finals):.2f}", fontsize=9)
    fig.tight_layout()
    return fig



# ------------------------------------------------------------ CPA Figs. 3-4: diversity vs return
#: figure -> (env, scenario, dataset, n = |A_i|, the four thresholds beta_1..beta_4 of the caption)
DIVERSITY_FIGURES = {
    "cpa-fig3": ("matrix", "permutation", "Poor", 4, lambda n: (1.0, 1 / (0.8 * n), 1 / n, 1 / (1.5 * n))),
    "cpa-fig4": ("aloha", "aloha", "Poor", 2, lambda n: (1.0, 1 / (1.5 * n), 1 / (2 * n), 1 / (3 * n))),
}
# PA in diverse mode, ours. A pool of 32, not algorithms.md 3.2's 8: Permutation has 24 optimal
# joint actions and 8 entries must merge them, which brings the mismatch back inside an entry
# (Poor, beta_4, teachers on agent Q_i: return 0.60 with 8 entries, 0.75 with 32). Repertoire
# decoding (`joint_decoding`, Aloha's setting already): each agent takes its part of the teacher
# joint action the decoders find most likely. From the joint-advantage teachers, which play
# only permutations at every beta, Eq. 12's own argmax gave 0.87 at beta_3 and 0.70 at beta_4
# (one agent's part of another entry's permutation), repertoire decoding 1.00 at both (5 seeds).
DIVERSITY_PA_OVERRIDES = ("system.pool_size=32", "system.joint_decoding=repertoire")


def reproduce_diversity_figure(figure: str, seeds: int = 5, results_dir: str = "results",
                               rel_dir: str = "vaults", workers: int = 1, progress: bool = False,
                               overrides: Sequence[str] = ()) -> str:
    """CPA Fig. 3 (Permutation) or Fig. 4 (Aloha), Poor data: for AR and PA and each beta, the
    final mean return and policy average entropy (Eq. 19) over seeds, sampled (diverse) mode.
    The AR runs of beta_1 are the teachers of every other bar (`system.teacher_checkpoint`).

    Runs live under `<results_dir>/<figure>/beta_<k>/`; the bars are drawn to
    `<results_dir>/figures/<figure>.png|pdf`.
    """
    from og_marl_inspo.cpa import distillation_steps, teacher_checkpoint_template
    from og_marl_inspo.data.collect import build_datasets
    from og_marl_inspo.data.vault import available_uids
    from og_marl_inspo.reporting import load_results, save_figure
    from og_marl_inspo.sweep import Run, sweep

    env, scenario, dataset, n, thresholds = DIVERSITY_FIGURES[figure]
    betas = thresholds(n)
    if dataset not in available_uids(rel_dir, "cpa", env, scenario):
        build_datasets("cpa", env, scenario, [dataset], rel_dir)
    # One AR teacher per seed (trained under beta_1; beta acts only at execution, Eq. 8); every
    # other bar evaluates it (AR, 0 steps) or distils it (PA, the config's distillation steps).
    teacher = teacher_checkpoint_template(Path(results_dir, figure, "beta_1"))
    pa_steps = distillation_steps(env, scenario)
    runs = {system: [Run(system, "cpa", env, scenario, dataset, seed) for seed in range(seeds)]
            for system in ("cpa_ar", "cpa_pa")}
    failures: List[str] = []
    for k, beta in enumerate(betas, 1):
        out = str(Path(results_dir, figure, f"beta_{k}"))
        common = [f"system.beta={beta!r}", "system.eval_mode=stochastic"]
        if k == 1:
            failures += sweep(runs["cpa_ar"], out, workers, overrides=common + list(overrides),
                              rel_dir=rel_dir, progress=progress)
            if failures:  # every other bar needs these teachers
                raise RuntimeError(f"{figure}: {len(failures)} AR teachers failed:\n" + "\n".join(failures))
        else:
            failures += sweep(runs["cpa_ar"], out, workers, overrides=common + [
                f"system.teacher_checkpoint={teacher}", *overrides], train_steps=0, rel_dir=rel_dir,
                progress=progress)
        failures += sweep(runs["cpa_pa"], out, workers, overrides=common + [
            *DIVERSITY_PA_OVERRIDES, f"system.teacher_checkpoint={teacher}", *overrides],
            train_steps=pa_steps, rel_dir=rel_dir, progress=progress)
    if failures:
        raise RuntimeError(f"{figure}: {len(failures)} runs failed:\n" + "\n".join(failures))
    bars = {}  # (system, k) -> (returns, entropies) over seeds
    for k in range(1, len(betas) + 1):
        for r in load_results(Path(results_dir, figure, f"beta_{k}"), "cpa", env):
            if r["seed"] < seeds and (r["scenario"], r["dataset"]) == (scenario, dataset):
                returns, entropies = bars.setdefault((r["system"], k), ([], []))
                returns.append(r["final"]["episode_return_mean"])
                entropies.append(r["final"].get("policy_average_entropy", float("nan")))
    paths = save_figure(_draw_diversity(figure, betas, n, bars), Path(results_dir, "figures", figure))
    lines = [f"{figure}: " + ", ".join(str(p) for p in paths)]
    for (system, k), (returns, entropies) in sorted(bars.items()):
        lines.append(f"  {system} beta_{k} = {betas[k - 1]:.3f}: return {np.mean(returns):.2f} +- "
                     f"{np.std(returns):.2f}, entropy {np.mean(entropies):.2f} +- {np.std(entropies):.2f} "
                     f"bits over {len(returns)} seeds")
    return "\n".join(lines)


def _draw_diversity(figure, betas, n, bars):
    """Two panels (AR, PA); per beta a return bar (left axis) and an entropy bar (right axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.0))
    x = np.arange(len(betas))
    for ax, system, title in zip(axes, ("cpa_ar", "cpa_pa"), ("AR", "PA")):
        stats = [bars.get((system, k), ([np.nan], [np.nan])) for k in range(1, len(betas) + 1)]
        ret = [np.mean(r) for r, _ in stats]
        ent = [np.mean(e) for _, e in stats]
        return_bars = ax.bar(x - 0.2, ret, 0.4, yerr=[np.std(r) for r, _ in stats], color="tab:blue",
                             label="return")
        twin = ax.twinx()
        entropy_bars = twin.bar(x + 0.2, ent, 0.4, yerr=[np.std(e) for _, e in stats],
                                color="tab:orange", label="entropy (bits)")
        twin.set_ylim(0, np.log2(n))
        ax.set_xticks(x, [f"β{k + 1}" for k in range(len(betas))])
        ax.set_ylabel("mean return")
        twin.set_ylabel("policy average entropy (bits)")
        ax.set_title(f"{title}, {figure}")
    fig.legend([return_bars, entropy_bars], ["return", "entropy (bits)"], loc="upper center",
               ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig
