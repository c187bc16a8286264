"""Flashbax vaults in OG-MARL's layout: write, read once, validate (og_marl_contract.md 4-5).

On disk: `<rel_dir>/<source>/<env>/<scenario>.vlt/<uid>/`, one flashbax `Vault` whose
experience is the nested dict below with a leading add-batch axis of 1:

    observations (1, L, N, O) float32     actions      (1, L, N) int32
    rewards      (1, L, N)    float32     terminals    (1, L, N) float32 (0/1)
    truncations  (1, L, N)    float32     infos.legals (1, L, N, A) float32 (0/1)
    infos.state  (1, L, S)    float32

Row t holds what was seen before acting, the joint action and what the step returned;
episodes are concatenated along time. OG-MARL's own `FlashbaxReplayBuffer` reads
these vaults unchanged.

Every problem with a vault raises `DataError` with one line naming the path and the
field, before any training step.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from og_marl_inspo.errors import DataError

REQUIRED_FIELDS = ("observations", "actions", "rewards", "terminals", "truncations",
                   "infos.legals", "infos.state")

Experience = Dict[str, Any]


def vault_dir(rel_dir: str, source: str, env: str, scenario: str) -> Path:
    """`<rel_dir>/<source>/<env>/<scenario>.vlt` (flashbax's vault name plus rel_dir)."""
    return Path(rel_dir) / source / env / f"{scenario}.vlt"


def available_uids(rel_dir: str, source: str, env: str, scenario: str) -> List[str]:
    """Dataset uids present on disk, sorted (hidden temporary folders excluded)."""
    root = vault_dir(rel_dir, source, env, scenario)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "metadata.json").exists())


def get_field(experience: Experience, dotted: str) -> np.ndarray:
    """`experience["infos"]["legals"]` for "infos.legals"."""
    value = experience
    for key in dotted.split("."):
        value = value[key]
    return value


# --------------------------------------------------------------------------- write
def write_vault(experience: Experience, rel_dir: str, source: str, env: str, scenario: str,
                uid: str, metadata: Optional[dict] = None) -> Path:
    """Write `experience` (arrays with a leading time axis L, no add-batch axis) as a vault.

    The vault is written under a hidden temporary uid and renamed into place, so an
    interrupted build never leaves a half-written dataset behind; an existing uid is
    replaced only once the new one is complete.
    """
    import flashbax as fbx  # jax is needed only here and in read_vault
    import jax
    from flashbax.vault import Vault

    experience = _cast(experience)
    length = int(experience["actions"].shape[0])
    if length == 0:
        raise DataError(f"{vault_dir(rel_dir, source, env, scenario) / uid}: field actions: "
                        "refusing to write an empty dataset")
    root = vault_dir(rel_dir, source, env, scenario).resolve()
    root.mkdir(parents=True, exist_ok=True)
    tmp_uid = f".{uid}.tmp-{os.getpid()}"
    shutil.rmtree(root / tmp_uid, ignore_errors=True)

    buffer = fbx.make_trajectory_buffer(
        add_batch_size=1, sample_batch_size=1, sample_sequence_length=1, period=1,
        min_length_time_axis=1, max_length_time_axis=length + 1)
    first_row = jax.tree_util.tree_map(lambda x: x[0], experience)
    state = buffer.init(first_row)
    state = buffer.add(state, jax.tree_util.tree_map(lambda x: x[None], experience))
    with contextlib.redirect_stdout(io.StringIO()):
        vault = Vault(vault_name=f"{source}/{env}/{scenario}.vlt",
                      experience_structure=state.experience, rel_dir=str(root.parents[2]),
                      vault_uid=tmp_uid, metadata=metadata or {})
    with contextlib.redirect_stdout(io.StringIO()):  # flashbax prints its progress
        written = vault.write(state)
    if written != length:
        raise DataError(f"{root / uid}: wrote {written} of {length} time steps")

    final, trash = root / uid, root / f".{uid}.old-{os.getpid()}"
    if final.exists():
        final.rename(trash)
    (root / tmp_uid).rename(final)
    shutil.rmtree(trash, ignore_errors=True)
    return final


def _cast(experience: Experience) -> Experience:
    """OG-MARL's dtypes: int32 actions, float32 for everything else."""
    return {
        "observations": np.asarray(experience["observations"], np.float32),
        "actions": np.asarray(experience["actions"], np.int32),
        "rewards": np.asarray(experience["rewards"], np.float32),
        "terminals": np.asarray(experience["terminals"], np.float32),
        "truncations": np.asarray(experience["truncations"], np.float32),
        "infos": {"legals": np.asarray(experience["infos"]["legals"], np.float32),
                  "state": np.asarray(experience["infos"]["state"], np.float32)},
    }


# ---------------------------------------------------------------------------- read
def read_vault(rel_dir: str, source: str, env: str, scenario: str, uid: str,
               environment=None) -> Experience:
    """Read a whole vault into numpy, once, and validate it.

    Returns the experience with the add-batch axis kept: (B0, L, ...). With an
    `environment`, N, O, A and S are checked against it.
    """
    root = vault_dir(rel_dir, source, env, scenario)
    if not root.is_dir():
        raise DataError(f"{root}: vault not found; build it with `og-marl-inspo datasets build "
                        f"--source {source} --env {env} --scenario {scenario}`")
    uids = available_uids(rel_dir, source, env, scenario)
    if uid not in uids:
        raise DataError(f"{root / uid}: unknown dataset uid {uid!r}; available: "
                        f"{', '.join(uids) or 'none'}")
    path = root / uid
    from flashbax.vault import Vault

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # flashbax prints "Loading vault ..."
            state = Vault(vault_name=f"{source}/{env}/{scenario}.vlt",
                          rel_dir=str(Path(rel_dir).resolve()), vault_uid=uid).read()
    except Exception as err:  # a corrupt or foreign folder: say where, not a traceback
        raise DataError(f"{path}: field metadata.json: cannot read the vault ({err})") from None
    experience = _to_numpy(state.experience, path)
    validate(experience, path, environment)
    return experience


def read_metadata(rel_dir: str, source: str, env: str, scenario: str, uid: str) -> dict:
    import json

    return json.loads((vault_dir(rel_dir, source, env, scenario) / uid / "metadata.json").read_text())


def _to_numpy(tree, path: Path) -> Experience:
    if not isinstance(tree, dict):
        raise DataError(f"{path}: field experience: expected a dict of arrays")
    return {k: (_to_numpy(v, path) if isinstance(v, dict) else np.asarray(v)) for k, v in tree.items()}


def validate(experience: Experience, path, environment=None) -> None:
    """Check fields, sizes against the environment, action range and finite rewards."""
    for field in REQUIRED_FIELDS:
        try:
            get_field(experience, field)
        except (KeyError, TypeError):
            raise DataError(f"{path}: field {field}: missing from the vault") from None
    obs = experience["observations"]
    if obs.ndim < 4 or obs.shape[1] == 0:
        raise DataError(f"{path}: field vault_index: the vault is empty (0 time steps)")
    n_agents = obs.shape[2]
    legals, state = experience["infos"]["legals"], experience["infos"]["state"]
    if environment is not None:
        checks = [("observations", "agents", n_agents, environment.num_agents),
                  ("observations", "observation size", tuple(obs.shape[3:]),
                   tuple(environment.observation_shape)),
                  ("infos.legals", "actions", legals.shape[-1], environment.num_actions)]
        if getattr(environment, "state_shape", None) is not None:
            checks.append(("infos.state", "state size", tuple(state.shape[2:]),
                           tuple(environment.state_shape)))
        for field, what, got, want in checks:
            if got != want:
                raise DataError(f"{path}: field {field}: {what} {_fmt(got)} in the vault, "
                                f"environment gives {_fmt(want)}")
    actions = experience["actions"]
    num_actions = legals.shape[-1]
    bad = (actions < 0) | (actions >= num_actions)
    if bad.any():
        raise DataError(f"{path}: field actions: {int(bad.sum())} values outside [0, {num_actions}) "
                        f"(e.g. {int(actions[bad][0])})")
    for field in ("rewards", "observations", "infos.state"):
        values = get_field(experience, field)
        nonfinite = ~np.isfinite(values)
        if nonfinite.any():
            raise DataError(f"{path}: field {field}: {int(nonfinite.sum())} NaN or inf values")


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return str(value[0]) if len(value) == 1 else "x".join(map(str, value))
    return str(value)


# ----------------------------------------------------------------------- statistics
def episode_ends(experience: Experience, row: int) -> np.ndarray:
    """Time indices, in add-batch row `row`, of the steps that end an episode: every
    agent's terminal (or truncation) set, as OG-MARL's analyse_vault reads them."""
    ends = np.all(experience["terminals"][row] > 0, axis=-1) | np.all(
        experience["truncations"][row] > 0, axis=-1)
    return np.flatnonzero(ends)


def episode_returns(experience: Experience) -> np.ndarray:
    """Per-episode returns as OG-MARL's analyse_vault computes them: agent 0's rewards
    summed over each episode."""
    returns = []
    for row in range(experience["rewards"].shape[0]):
        rewards = experience["rewards"][row, :, 0]
        start = 0
        for t in episode_ends(experience, row):
            returns.append(float(rewards[start:t + 1].sum()))
            start = t + 1
    return np.asarray(returns)


def flag_time_limit_ends(experience: Experience, episode_limit: int) -> Experience:
    """A copy of `experience` whose episodes of exactly `episode_limit` steps also carry
    `truncations` on their last step (og_marl_contract.md 2.3: vaults record a timeout as a
    terminal, so the episode's length is the only trace of it). Terminals stay as they are,
    so bootstrapping with (1 - terminal) and recurrent resets are unchanged; a system that
    treats timeouts otherwise reads `Batch.timeouts`. An episode that really ends on its
    last allowed step is flagged too: the data cannot tell the two apart."""
    truncations = np.array(experience["truncations"], copy=True)
    for row in range(truncations.shape[0]):
        ends = episode_ends(experience, row)
        lengths = np.diff(np.concatenate([[-1], ends]))
        truncations[row, ends[lengths == episode_limit]] = 1.0
    return {**experience, "truncations": truncations}


def summary(experience: Experience) -> dict:
    """Episodes, transitions and return statistics of a vault."""
    returns = episode_returns(experience)
    stats = {"episodes": int(returns.size),
             "transitions": int(np.prod(experience["actions"].shape[:2]))}
    if returns.size:
        stats.update(return_mean=float(returns.mean()), return_std=float(returns.std()),
                     return_min=float(returns.min()), return_max=float(returns.max()))
    return stats


def joint_action_frequencies(experience: Experience) -> Dict[tuple, float]:
    """Share of rows per joint action (matrix-game datasets), most frequent first."""
    joint = experience["actions"].reshape(-1, experience["actions"].shape[-1])
    values, counts = np.unique(joint, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {tuple(int(a) for a in values[i]): float(counts[i] / counts.sum()) for i in order}


def list_vaults(rel_dir: str = "vaults"):
    """(source, env, scenario, uid, metadata) of every vault under rel_dir, sorted."""
    import json

    root = Path(rel_dir)
    found = []
    for meta in sorted(root.glob("*/*/*.vlt/*/metadata.json")):
        uid_dir = meta.parent
        if uid_dir.name.startswith("."):
            continue
        source, env = uid_dir.parents[2].name, uid_dir.parents[1].name
        found.append((source, env, uid_dir.parent.name[:-len(".vlt")], uid_dir.name,
                      json.loads(meta.read_text())))
    return found
