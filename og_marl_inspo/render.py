"""Pictures of one grid-game episode (Bridge, Sensor, Aloha) and of a policy's joint actions.

    og-marl-inspo render --source S --env E --scenario SC --dataset UID --episode K --out FILE
    og-marl-inspo render --source S --env E --scenario SC --system NAME --checkpoint DIR --out FILE

writes `FILE.gif` (one frame per step, plus the final position when it is known) and
`FILE.png` (the same frames as a strip, ten per row); with a trained system also
`FILE_joint.png`, the joint-action distribution of its policy at a few states (CPA
Fig. 5's kind: Bridge at the start and at the successors of the two optimal first
moves, as 5 x 5 heat maps, rows agent_1's action, columns agent_0's; games with more
than two agents show each agent's marginal instead). Distributions are counted from
`samples` calls of the system's own `act` in its evaluation mode, so autoregressive
systems are drawn the same way; a policy with memory is shown from a fresh start.

An episode is a dict of per-step arrays: `obs` (T,N,O), `legals` (T,N,A), `state`
(T,S), `actions` (T,N), `rewards` (T,), and `final_state` (S,) or None. Every frame is
drawn from the state alone, so data and rollouts render the same way. matplotlib
only (Agg); the GIF goes through matplotlib's PillowWriter.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from og_marl_inspo.envs import aloha, bridge, sensor
from og_marl_inspo.errors import DataError

AGENT_COLOURS = ("tab:red", "tab:blue")  # Bridge agent_0, agent_1 (AlberDICE: red, blue)
BRIDGE_ARROWS = ((0, 0), (-0.35, 0), (0.35, 0), (0, 0.35), (0, -0.35))  # (d_row, d_col) per action
ACTION_NAMES = {"bridge": ("stay", "up", "down", "right", "left")}
STRIP_COLUMNS = 10
Episode = Dict[str, Optional[np.ndarray]]


# ------------------------------------------------------------------ episodes
def dataset_episode(rel_dir: str, source: str, env: str, scenario: str, uid: str,
                    k: int, environment) -> Episode:
    """Episode `k` (0-based, in vault order) of a dataset."""
    from og_marl_inspo.data.vault import read_vault, vault_dir

    data = read_vault(rel_dir, source, env, scenario, uid, environment)
    ends = np.flatnonzero(np.all(data["terminals"][0] > 0, axis=-1)
                          | np.all(data["truncations"][0] > 0, axis=-1))
    if not 0 <= k < len(ends):
        raise DataError(f"{vault_dir(rel_dir, source, env, scenario) / uid}: field terminals: "
                        f"no episode {k}; the dataset holds episodes 0 to {len(ends) - 1}")
    start, stop = (ends[k - 1] + 1 if k else 0), ends[k] + 1
    rows = slice(start, stop)
    episode = {"obs": data["observations"][0, rows], "legals": data["infos"]["legals"][0, rows],
               "state": data["infos"]["state"][0, rows], "actions": data["actions"][0, rows],
               "rewards": data["rewards"][0, rows, 0], "final_state": None}
    if env == "bridge":  # deterministic rules: the last position follows from the last step
        episode["final_state"] = _bridge_next_state(episode["state"][-1], episode["actions"][-1])
    return episode


def _bridge_next_state(state: np.ndarray, joint_action: np.ndarray) -> np.ndarray:
    positions = _bridge_positions(state)
    done = tuple(positions[i] == bridge.GOALS[i] for i in (0, 1))
    p0, p1 = bridge.transition(positions, done, joint_action)
    return np.array([*p0, *bridge.GOALS[0], *p1, *bridge.GOALS[1]], np.float32)


def _bridge_positions(state: np.ndarray) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    s = np.asarray(state).astype(int)
    return (int(s[0]), int(s[1])), (int(s[4]), int(s[5]))


def policy_episode(system, environment, seed: int = 0) -> Episode:
    """One evaluation episode of `system` (its own evaluation mode), recorded step by step."""
    rng = np.random.default_rng(seed)
    batch = environment.batch(1, seed)
    obs, legals, state = batch.reset()
    system.reset(1)
    steps: Dict[str, List[np.ndarray]] = {k: [] for k in ("obs", "legals", "state", "actions", "rewards")}
    done = np.zeros(1, bool)
    while not done[0]:
        actions = system.act(obs, legals, rng, state)
        for key, value in (("obs", obs), ("legals", legals), ("state", state), ("actions", actions)):
            steps[key].append(np.asarray(value)[0])
        obs, legals, state, rewards, done = batch.step(actions, ~done)
        steps["rewards"].append(np.asarray(rewards)[0])
    episode = {k: np.stack(v) for k, v in steps.items()}
    episode["final_state"] = np.asarray(state)[0]
    return episode


# ------------------------------------------------------------------ drawing
def _draw_bridge(ax, state, action) -> None:
    grid = np.ones((bridge.ROWS, bridge.COLS))
    for cell in bridge.BLOCKED:
        grid[cell] = 0.0
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    for i, (pos, goal) in enumerate(zip(_bridge_positions(state), bridge.GOALS)):
        colour = AGENT_COLOURS[i]
        ax.add_patch(_square(goal, colour, fill=False, lw=2.5))
        ax.plot(pos[1] + (i - 0.5) * 0.15, pos[0], "o", color=colour, ms=14)
        if action is not None and int(action[i]) != 0:
            dr, dc = BRIDGE_ARROWS[int(action[i])]
            ax.annotate("", xy=(pos[1] + dc, pos[0] + dr), xytext=(pos[1], pos[0]),
                        arrowprops=dict(arrowstyle="->", color="black", lw=1.5))
    _grid_lines(ax, bridge.ROWS, bridge.COLS)


def _draw_sensor(ax, state, action) -> None:
    windows = np.asarray(state).reshape(sensor.N_SENSORS, 11)
    grid = np.ones((sensor.ROWS, sensor.COLS))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    targets = set()
    for k, (r, c) in enumerate(sensor.SENSOR_CELLS):
        window = windows[k, :9].reshape(3, 3)
        targets.update((r + dr - 1, c + dc - 1) for dr, dc in np.argwhere(window == 1.0))
        ax.add_patch(_square((r, c), "0.35", fill=True))
        if action is not None and int(action[k]) != sensor.IDLE:
            tr, tc = sensor.scan_cell(k, int(action[k]))
            ax.plot([c, tc], [r, tr], color="tab:orange", lw=1.5)
    for r, c in sorted(targets):
        ax.plot(c, r, "*", color="tab:red", ms=16)
    _grid_lines(ax, sensor.ROWS, sensor.COLS)


_ALOHA_XY = [(k % 5, k // 5) for k in range(aloha.N_AGENTS)]  # 0-4 on top, 5-9 below


def _draw_aloha(ax, state, action) -> None:
    backlog = np.asarray(state)
    for i, neighbours in enumerate(aloha.NEIGHBOURS):
        for j in neighbours:
            if i < j:
                (x0, y0), (x1, y1) = _ALOHA_XY[i], _ALOHA_XY[j]
                both = action is not None and int(action[i]) == 1 and int(action[j]) == 1
                ax.plot([x0, x1], [y0, y1], color="tab:red" if both else "0.7",
                        lw=3 if both else 1, zorder=1)
    for i, (x, y) in enumerate(_ALOHA_XY):
        sending = action is not None and int(action[i]) == 1
        ax.scatter([x], [y], s=700, color="tab:orange" if sending else "0.85", edgecolor="black",
                   zorder=2)
        ax.text(x, y, f"{int(backlog[i])}", ha="center", va="center", fontsize=11, zorder=3)
    ax.set_xlim(-0.6, 4.6)
    ax.set_ylim(1.6, -0.6)
    ax.set_axis_off()


DRAW = {"bridge": _draw_bridge, "sensor": _draw_sensor, "aloha": _draw_aloha}
LEGEND = {"bridge": "circles: agent_0 red, agent_1 blue; squares: their goals; black: blocked",
          "sensor": "grey: sensors; stars: targets; orange: scans",
          "aloha": "numbers: backlog; orange: transmit; red edge: both neighbours transmit"}


def _square(cell, colour, fill: bool, lw: float = 1.0):
    from matplotlib.patches import Rectangle

    return Rectangle((cell[1] - 0.45, cell[0] - 0.45), 0.9, 0.9, fill=fill, edgecolor=colour,
                     facecolor=colour if fill else "none", lw=lw)


def _grid_lines(ax, rows: int, cols: int) -> None:
    """Cell borders as two line collections (tick-based grids are several times slower)."""
    ax.hlines(np.arange(-0.5, rows), -0.5, cols - 0.5, color="0.6", lw=0.5)
    ax.vlines(np.arange(-0.5, cols), -0.5, rows - 0.5, color="0.6", lw=0.5)
    ax.set_axis_off()


def frames(episode: Episode) -> List[Tuple[np.ndarray, Optional[np.ndarray], str]]:
    """(state, action or None, title) per frame: every step, then the final state if known."""
    out, total = [], 0.0
    for t, (state, action, reward) in enumerate(zip(episode["state"], episode["actions"],
                                                     episode["rewards"])):
        total += float(reward)
        out.append((state, action, f"t={t}  r={float(reward):.3g}  G={total:.3g}"))
    if episode.get("final_state") is not None:
        out.append((episode["final_state"], None, f"t={len(out)} (end)  G={total:.3g}"))
    return out


def _draw_frame(env: str, ax, frame) -> None:
    state, action, title = frame
    ax.clear()
    ax.set_axis_off()
    DRAW[env](ax, state, action)
    ax.set_title(title, fontsize=9)


def write_gif(env: str, episode: Episode, path, fps: float = 2.0) -> int:
    """Animated GIF, written atomically; returns the number of frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import PillowWriter

    items = frames(episode)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    fig.suptitle(LEGEND[env], fontsize=6)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")  # PillowWriter reads the suffix
    writer = PillowWriter(fps=fps)
    try:
        with writer.saving(fig, str(tmp), dpi=80):  # one draw per frame
            for item in items:
                _draw_frame(env, ax, item)
                writer.grab_frame()
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return len(items)


def write_strip(env: str, episode: Episode, stem) -> Path:
    """All frames side by side (STRIP_COLUMNS per row) as `stem.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from og_marl_inspo.reporting import save_figure

    items = frames(episode)
    cols = min(len(items), STRIP_COLUMNS)
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.0 * rows), squeeze=False)
    for ax in axes.flat[len(items):]:
        ax.axis("off")
    for ax, item in zip(axes.flat, items):
        _draw_frame(env, ax, item)
    fig.suptitle(LEGEND[env], fontsize=9)
    return save_figure(fig, stem, ("png",))[0]


# ------------------------------------------------------------------ policies
def joint_distribution(system, obs: np.ndarray, legals: np.ndarray, samples: int = 2000,
                       seed: int = 0) -> np.ndarray:
    """Frequencies of the joint actions `system.act` picks at one state (obs (N,O), legals
    (N,A)): (A, A) for two agents (rows agent_1, columns agent_0), else (N, A) marginals."""
    n, a = legals.shape
    system.reset(samples)
    actions = system.act(np.broadcast_to(obs, (samples,) + obs.shape).copy(),
                         np.broadcast_to(legals, (samples,) + legals.shape).copy(),
                         np.random.default_rng(seed))  # (samples, N)
    if n == 2:
        counts = np.zeros((a, a))
        np.add.at(counts, (actions[:, 1], actions[:, 0]), 1.0)
        return counts / samples
    return np.stack([np.bincount(actions[:, i], minlength=a) for i in range(n)]) / samples


def figure_states(env: str, environment, episode: Episode) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """(label, obs, legals) of the states drawn in the joint-action figure."""
    if env == "bridge":  # CPA Fig. 5: the start and the successors of the two optimal first moves
        game = bridge.Bridge()
        out = []
        for label, positions in (("start", bridge.STARTS),
                                 ("after (right, right)", ((1, 3), (1, 4))),
                                 ("after (left, left)", ((1, 1), (1, 2)))):
            game._reset()
            game.positions = positions
            obs, legals, _ = game._observe()
            out.append((label, obs, legals))
        return out
    count = min(3, len(episode["obs"]))
    return [(f"episode step {t}", episode["obs"][t], episode["legals"][t]) for t in range(count)]


def write_joint_figure(env: str, system, environment, episode: Episode, stem,
                       samples: int = 2000) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from og_marl_inspo.reporting import save_figure

    states = figure_states(env, environment, episode)
    fig, axes = plt.subplots(1, len(states), figsize=(4.0 * len(states), 3.4), squeeze=False)
    for col, (ax, (label, obs, legals)) in enumerate(zip(axes[0], states)):
        dist = joint_distribution(system, obs, legals, samples)
        image = ax.imshow(dist, cmap="viridis", vmin=0, vmax=1)
        if dist.shape[0] == dist.shape[1] == environment.num_actions and environment.num_agents == 2:
            ax.set_xlabel("agent_0's action")
            if col == 0:
                ax.set_ylabel("agent_1's action")
            names = ACTION_NAMES.get(env)
            if names:
                ax.set_xticks(range(len(names)), names, fontsize=7)
                ax.set_yticks(range(len(names)), names, fontsize=7)
            for (r, c), p in np.ndenumerate(dist):
                ax.text(c, r, f"{p:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if p < 0.5 else "black")
        else:
            ax.set_xlabel("action")
            if col == 0:
                ax.set_ylabel("agent")
        ax.set_title(label, fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8)
    fig.suptitle(f"{type(system).__name__}: joint actions chosen ({system.eval_mode}, "
                 f"{samples} samples per state)", fontsize=9)
    return save_figure(fig, stem, ("png",))[0]


# ------------------------------------------------------------------ entry
def restore_system(checkpoint, system_name: str, source: str, env: str, scenario: str):
    """(system, environment) from `seed_<k>_checkpoints/` or its results file `seed_<k>.json`."""
    from og_marl_inspo.launch import restore

    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".json":
        results_file = checkpoint
    elif checkpoint.name.endswith("_checkpoints"):
        results_file = checkpoint.with_name(checkpoint.name[:-len("_checkpoints")] + ".json")
    else:
        raise DataError(f"{checkpoint}: expected a run's seed_<k>_checkpoints folder or its "
                        "seed_<k>.json")
    system, environment = restore(results_file)
    results = json.loads(results_file.read_text())
    if results["system"] != system_name:
        raise ValueError(f"{checkpoint}: a checkpoint of system {results['system']!r}, "
                         f"not {system_name!r}")
    task = results["config"]["task"]
    if (task["source"], task["env"], task["scenario"]) != (source, env, scenario):
        raise ValueError(f"{checkpoint}: trained on {task['source']}/{task['env']}/"
                         f"{task['scenario']}, not {source}/{env}/{scenario}")
    return system, environment


def render(source: str, env: str, scenario: str, out, *, system_name: Optional[str] = None,
           checkpoint=None, dataset: Optional[str] = None, episode_index: int = 0,
           rel_dir: str = "vaults", seed: int = 0, eval_mode: Optional[str] = None,
           samples: int = 2000) -> Dict[str, object]:
    """Write the GIF, the strip and (with a system) the joint-action figure; return paths."""
    from og_marl_inspo.envs import get_environment

    if env not in DRAW:
        raise ValueError(f"render draws grid games only: {', '.join(DRAW)}; got {env!r}")
    if (system_name is None) == (dataset is None) or (system_name is None) != (checkpoint is None):
        raise ValueError("render needs either --system NAME --checkpoint DIR or --dataset UID")
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".gif", ".png") else out
    written: Dict[str, object] = {}
    if dataset is not None:
        environment = get_environment(source, env, scenario)
        episode = dataset_episode(rel_dir, source, env, scenario, dataset, episode_index, environment)
        system = None
    else:
        system, environment = restore_system(checkpoint, system_name, source, env, scenario)
        if eval_mode is not None:
            system.eval_mode = eval_mode
        episode = policy_episode(system, environment, seed)
    written["frames"] = write_gif(env, episode, stem.with_name(stem.name + ".gif"))
    written["gif"] = stem.with_name(stem.name + ".gif")
    written["png"] = write_strip(env, episode, stem)
    written["return"] = float(np.sum(episode["rewards"]))
    if system is not None:
        written["joint"] = write_joint_figure(env, system, environment, episode,
                                              stem.with_name(stem.name + "_joint"), samples)
    return written
