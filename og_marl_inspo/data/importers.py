"""Published OG-MARL vaults: download, unpack into OG-MARL's layout, check their sizes.

OG-MARL publishes each scenario as one zip on the Hugging Face dataset
`InstaDeepAI/og-marl` (`og_marl/vault_utils/download_vault.py`, VAULT_INFO); unpacked
into `<rel_dir>/<source>/<env>/` it gives `<scenario>.vlt/<uid>/` for every uid at
once (og_marl_contract.md 5.1). Here the zip is fetched to a temporary file, unpacked
into a temporary folder beside the target, checked uid by uid against the sizes of
contract table 6.1 (N, O, A, S), and only then moved into place, so a failed or
refused download never leaves a partial vault behind. As in OG-MARL, nothing is
fetched when `<scenario>.vlt` already exists and is not empty.

Also here: `import_pymarl` and `export_pymarl`, which move datasets between vaults and
the episode batches of pymarl/EPyMARL-based codebases (.npz with `obs`, `state`,
`actions`, `avail_actions`, `reward`, `terminated`, `filled`), checking every array
against the named environment and refusing a mismatch with one line naming the array.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from og_marl_inspo.data.vault import vault_dir
from og_marl_inspo.envs.smac import SMAC_V1_SCENARIOS, SMAC_V1_SHAPES
from og_marl_inspo.errors import DataError

HF_BASE = "https://huggingface.co/datasets/InstaDeepAI/og-marl/resolve/main"

# Path of each (source, env) under HF_BASE, as in OG-MARL's VAULT_INFO.
_REMOTE_DIRS: Dict[Tuple[str, str], str] = {
    ("cfcql", "smac_v1"): "prior_work/cfcql/smac_v1",
    ("og_marl", "smac_v1"): "core/smac_v1",
}

# Dataset uids each source publishes (contract 5.3).
EXPECTED_UIDS: Dict[Tuple[str, str], Tuple[str, ...]] = {
    ("cfcql", "smac_v1"): ("Expert", "Medium", "Medium-Replay", "Mixed"),
    ("og_marl", "smac_v1"): ("Good", "Medium", "Poor"),
}


def download_url(source: str, env: str, scenario: str) -> str:
    """OG-MARL's published zip for (source, env, scenario)."""
    scenarios = SMAC_V1_SCENARIOS.get(source, ()) if env == "smac_v1" else ()
    if (source, env) not in _REMOTE_DIRS or scenario not in scenarios:
        known = ", ".join(f"{s}/{e}/{sc}" for (s, e) in _REMOTE_DIRS
                          for sc in SMAC_V1_SCENARIOS.get(s, ()))
        raise ValueError(f"no published vault for {source}/{env}/{scenario}; known: {known}")
    return f"{HF_BASE}/{_REMOTE_DIRS[(source, env)]}/{scenario}.zip"


def download_cfcql(scenario: str, rel_dir: str = "vaults", url: Optional[str] = None) -> Path:
    """The CFCQL SMAC v1 vaults of `scenario` under `<rel_dir>/cfcql/smac_v1/`."""
    return download_vault("cfcql", "smac_v1", scenario, rel_dir=rel_dir, url=url)


def download_vault(source: str, env: str, scenario: str, rel_dir: str = "vaults",
                   url: Optional[str] = None) -> Path:
    """Fetch, unpack and check one scenario's vaults; return `<scenario>.vlt`.

    `url` overrides the published location: http(s)://, file:// or a plain path.
    """
    published = download_url(source, env, scenario)  # also refuses unknown names
    target = vault_dir(rel_dir, source, env, scenario)
    if target.is_dir() and any(target.iterdir()):
        print(f"{target}: already present, not downloading")
        return target
    url = url or published
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{scenario}.download-", dir=target.parent))
    try:
        archive = _fetch(url, work / "archive.zip")
        unpacked = work / "unpacked"
        _extract(archive, unpacked, url)
        found = _find_vlt(unpacked, scenario, url)
        _check_vaults(found, source, env, scenario, target, url)
        if target.exists():  # an empty folder left by someone else
            target.rmdir()
        os.replace(found, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    uids = sorted(p.name for p in target.iterdir() if (p / "metadata.json").exists())
    print(f"{target}: {', '.join(uids)}")
    return target


# ----------------------------------------------------------------------- helpers
def _local_path(url: str) -> Optional[Path]:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("", ) or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(url)
    return None


def _fetch(url: str, dest: Path) -> Path:
    local = _local_path(url)
    if local is not None:
        if not local.is_file():
            raise DataError(f"{local}: field url: no such file")
        return local
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except OSError as err:  # URLError and HTTPError are OSErrors
        raise DataError(f"{url}: field url: download failed ({err})") from None
    return dest


def _extract(archive: Path, into: Path, url: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                parts = Path(name).parts
                if name.startswith(("/", "\\")) or ".." in parts:
                    raise DataError(f"{url}: field archive: unsafe member path {name!r}")
            zf.extractall(into)
    except zipfile.BadZipFile as err:
        raise DataError(f"{url}: field archive: not a zip file ({err})") from None


def _find_vlt(unpacked: Path, scenario: str, url: str) -> Path:
    """`<scenario>.vlt` at the top of the zip (OG-MARL's layout) or a few levels down."""
    name = f"{scenario}.vlt"
    candidates = sorted((p for p in unpacked.rglob(name) if p.is_dir()),
                        key=lambda p: len(p.parts))
    if not candidates:
        raise DataError(f"{url}: field archive: no {name} folder in the zip")
    return candidates[0]


def _shape(text, path: Path, field: str) -> Tuple[int, ...]:
    try:
        return tuple(int(x) for x in str(text).strip("()[] ").split(",") if x.strip())
    except ValueError:
        raise DataError(f"{path}: field {field}: unreadable shape {text!r} in metadata.json") from None


def _check_vaults(found: Path, source: str, env: str, scenario: str, target: Path,
                  url: str) -> None:
    """Every uid's recorded leaf shapes against table 6.1; messages name the final path."""
    n, o, a, s = SMAC_V1_SHAPES[scenario]
    uid_dirs = sorted(p for p in found.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not uid_dirs:
        raise DataError(f"{target}: field uid: no dataset in the zip from {url}")
    for uid_dir in uid_dirs:
        path = target / uid_dir.name  # where it would be installed
        meta_file = uid_dir / "metadata.json"
        if not meta_file.exists():
            raise DataError(f"{path}: field metadata.json: missing (from {url})")
        try:
            shapes = json.loads(meta_file.read_text())["structure_shape"]
        except (ValueError, KeyError):
            raise DataError(f"{path}: field metadata.json: no structure_shape (from {url})") from None
        wanted = {"observations": ((n, o), "agents x observation size"),
                  "actions": ((n,), "agents"),
                  "infos.legals": ((n, a), "agents x actions"),
                  "infos.state": ((s,), "state size")}
        for field, (want, what) in wanted.items():
            node = shapes
            for key in field.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                raise DataError(f"{path}: field {field}: missing from metadata.json (from {url})")
            got = _shape(node, path, field)[2:]  # drop (add-batch, time)
            if got != want:
                raise DataError(f"{path}: field {field}: {what} "
                                f"{'x'.join(map(str, got))} in the vault, {source}/{env}/{scenario} "
                                f"needs {'x'.join(map(str, want))} (from {url}; nothing installed)")
    missing = set(EXPECTED_UIDS.get((source, env), ())) - {p.name for p in uid_dirs}
    if missing:
        print(f"{target}: note: the zip lacks {', '.join(sorted(missing))}")


# ------------------------------------------------------------------ pymarl batches
# The episode-batch layout of pymarl/EPyMARL-based codebases (`EpisodeBatch`), saved as
# one .npz: E episodes padded to T+1 slots, slot t holding what was seen before step t,
# the action taken and what the step returned; `filled` is 1 on used slots. pymarl also
# fills the slot after the last step (the final observation, a never-executed action,
# reward 0), and a time-limit end has no `terminated` flag.
PYMARL_ARRAYS = ("obs", "state", "actions", "avail_actions", "reward", "terminated", "filled")


def _pymarl_expected(environment, episodes: int, slots: int, state_size: Tuple) -> Dict[str, Tuple]:
    """Expected shape of each pymarl array for this environment, E and T+1 given (the
    file's own state size where the environment declares none)."""
    n, a = environment.num_agents, environment.num_actions
    state_shape = getattr(environment, "state_shape", None)
    return {"obs": (episodes, slots, n) + tuple(environment.observation_shape),
            "state": (episodes, slots) + (tuple(state_shape) if state_shape else state_size),
            "actions": (episodes, slots, n, 1),
            "avail_actions": (episodes, slots, n, a),
            "reward": (episodes, slots, 1),
            "terminated": (episodes, slots, 1),
            "filled": (episodes, slots, 1)}


def _dims(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _load_pymarl(path: Path, environment) -> Dict[str, np.ndarray]:
    """The seven arrays of `path`, with shapes checked against `environment`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: np.asarray(npz[key]) for key in npz.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError) as err:  # not an .npz, or an object array
        raise DataError(f"{path}: not a readable .npz of plain arrays ({err})") from None
    for key in PYMARL_ARRAYS:
        if key not in arrays:
            raise DataError(f"{path}: array {key}: missing (the pymarl layout needs "
                            f"{', '.join(PYMARL_ARRAYS)})")
    obs = arrays["obs"]
    if obs.ndim < 3 or obs.shape[1] < 2:
        raise DataError(f"{path}: array obs: shape {_dims(obs.shape)}, expected (E, T+1, N, O) "
                        "with T+1 >= 2")
    expected = _pymarl_expected(environment, obs.shape[0], obs.shape[1], arrays["state"].shape[2:])
    names = {0: "episodes E", 1: "slots T+1"}
    for key in PYMARL_ARRAYS:
        got, want = arrays[key].shape, expected[key]
        if got != want:
            axis = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), len(want))
            what = names.get(axis, "size")
            raise DataError(f"{path}: array {key}: shape {_dims(got)}, expected {_dims(want)} "
                            f"({what} differs; N={environment.num_agents}, "
                            f"A={environment.num_actions} for this environment)")
    for key in PYMARL_ARRAYS:
        if arrays[key].dtype.kind not in "biuf":
            raise DataError(f"{path}: array {key}: dtype {arrays[key].dtype} is not numeric")
    return arrays


def _episode_lengths(path: Path, filled: np.ndarray, terminated: np.ndarray) -> np.ndarray:
    """Steps of each episode: up to its first `terminated` slot, else all filled slots but
    the last one (pymarl's final observation)."""
    used = filled > 0  # (E, T+1)
    count = used.sum(axis=1)
    gap = np.flatnonzero((used[:, 1:] & ~used[:, :-1]).any(axis=1))
    if gap.size:
        raise DataError(f"{path}: array filled: episode {gap[0]} has a used slot after padding "
                        "(filled must be 1s then 0s)")
    done = (terminated > 0) & used
    first = np.where(done.any(axis=1), done.argmax(axis=1) + 1, np.maximum(count - 1, 0))
    return first


def _check_steps(path: Path, arrays: Dict[str, np.ndarray], steps: np.ndarray,
                 num_actions: int) -> None:
    """Action range, legality under avail_actions and finite values, on used steps only."""
    actions, avail = arrays["actions"][..., 0], arrays["avail_actions"]
    if actions.dtype.kind == "f" and not np.array_equal(actions[steps], np.round(actions[steps])):
        raise DataError(f"{path}: array actions: non-integer values")
    taken = actions[steps].astype(np.int64)  # (K, N)
    outside = (taken < 0) | (taken >= num_actions)
    if outside.any():
        raise DataError(f"{path}: array actions: {int(outside.sum())} values outside "
                        f"[0, {num_actions}) (e.g. {int(taken[outside][0])})")
    legal = np.take_along_axis(avail[steps], taken[..., None], axis=-1)[..., 0] > 0  # (K, N)
    if not legal.all():
        k, agent = np.argwhere(~legal)[0]
        episode, t = (int(x[k]) for x in steps)
        raise DataError(f"{path}: array actions: {int((~legal).sum())} actions not legal under "
                        f"avail_actions (e.g. episode {episode}, step {t}, agent {agent}: action "
                        f"{int(taken[k, agent])})")
    for key in ("reward", "obs", "state"):
        bad = ~np.isfinite(arrays[key][steps])
        if bad.any():
            raise DataError(f"{path}: array {key}: {int(bad.sum())} NaN or inf values")


def import_pymarl(path, source: str, env: str, scenario: str, uid: str, rel_dir: str = "vaults",
                  overwrite: bool = False) -> Tuple[Path, dict]:
    """Write a pymarl episode batch (.npz) as the vault `<source>/<env>/<scenario>.vlt/<uid>`.

    Every used step becomes one row of OG-MARL's experience: obs, state, legals
    (avail_actions), the joint action, the team reward copied to every agent, and a
    terminal on each episode's last step (time-limit ends included, as OG-MARL marks
    them). Nothing is written unless the whole file passes the checks.
    """
    from og_marl_inspo.data.vault import available_uids, summary, validate, write_vault
    from og_marl_inspo.envs import get_environment

    path = Path(path)
    environment = get_environment(source, env, scenario)
    target = vault_dir(rel_dir, source, env, scenario) / uid
    if uid in available_uids(rel_dir, source, env, scenario) and not overwrite:
        raise DataError(f"{target}: dataset already exists; choose another --dataset or pass "
                        "--overwrite")
    arrays = _load_pymarl(path, environment)
    lengths = _episode_lengths(path, arrays["filled"][..., 0], arrays["terminated"][..., 0])
    if lengths.sum() == 0:
        raise DataError(f"{path}: array filled: no episode holds a step")
    episodes = np.repeat(np.arange(len(lengths)), lengths)
    times = np.concatenate([np.arange(n) for n in lengths])
    steps = (episodes, times)  # every used step, episode by episode
    _check_steps(path, arrays, steps, environment.num_actions)

    n_agents = environment.num_agents
    terminals = np.zeros((len(times), n_agents), np.float32)
    terminals[np.cumsum(lengths[lengths > 0]) - 1] = 1.0
    experience = {
        "observations": arrays["obs"][steps],
        "actions": arrays["actions"][steps][..., 0],
        "rewards": np.repeat(arrays["reward"][steps], n_agents, axis=1),  # team reward per agent
        "terminals": terminals,
        "truncations": np.zeros_like(terminals),
        "infos": {"legals": arrays["avail_actions"][steps], "state": arrays["state"][steps]},
    }
    batched = {k: ({kk: vv[None] for kk, vv in v.items()} if isinstance(v, dict) else v[None])
               for k, v in experience.items()}
    validate(batched, path, environment)
    stats = summary(batched)
    metadata = {"imported_from": "pymarl", "file": path.name,
                "skipped_empty_episodes": int((lengths == 0).sum()), **stats}
    return write_vault(experience, rel_dir, source, env, scenario, uid, metadata), stats


def export_pymarl(source: str, env: str, scenario: str, uid: str, out, rel_dir: str = "vaults") -> dict:
    """Write the vault `<source>/<env>/<scenario>.vlt/<uid>` as a pymarl episode batch (.npz).

    Episodes end at rows whose terminals are set; `terminated` is 1 on each episode's
    last step. A vault has no observation after an episode's last step, so that slot
    is left as padding (`filled` 0) and the time axis is the longest episode plus one.
    Written to a temporary file and renamed, so `out` is never left half-written.
    Returns {"episodes", "steps", "slots"}.
    """
    from og_marl_inspo.data.vault import read_vault
    from og_marl_inspo.envs import get_environment

    data = read_vault(rel_dir, source, env, scenario, uid, get_environment(source, env, scenario))
    path = vault_dir(rel_dir, source, env, scenario) / uid
    if data["actions"].shape[0] != 1:
        raise DataError(f"{path}: field actions: {data['actions'].shape[0]} add-batch rows; the "
                        "pymarl export reads vaults with one")
    row = {k: (v[0] if not isinstance(v, dict) else {kk: vv[0] for kk, vv in v.items()})
           for k, v in data.items()}
    if (row["truncations"] > 0).any():
        raise DataError(f"{path}: field truncations: {int((row['truncations'] > 0).any(-1).sum())} "
                        "rows set; the pymarl layout has no truncation flag")
    terminals = row["terminals"] > 0  # (L, N)
    if (terminals.any(-1) != terminals.all(-1)).any():
        raise DataError(f"{path}: field terminals: agents disagree on where episodes end")
    rewards = row["rewards"]  # (L, N)
    if not np.array_equal(rewards, np.repeat(rewards[:, :1], rewards.shape[1], axis=1)):
        raise DataError(f"{path}: field rewards: agents' rewards differ; the pymarl layout "
                        "stores one team reward")
    ends = np.flatnonzero(terminals.all(-1))
    if ends.size == 0 or ends[-1] != len(rewards) - 1:
        raise DataError(f"{path}: field terminals: the last episode is unfinished "
                        f"({len(rewards) - 1 - (ends[-1] if ends.size else -1)} rows after the last "
                        "terminal)")
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    slots = int(lengths.max()) + 1
    episodes, times = np.repeat(np.arange(len(lengths)), lengths), np.concatenate(
        [np.arange(n) for n in lengths])

    def padded(values: np.ndarray, dtype) -> np.ndarray:
        out = np.zeros((len(lengths), slots) + values.shape[1:], dtype)
        out[episodes, times] = values
        return out

    last = np.zeros(len(times), np.uint8)
    last[ends] = 1
    arrays = {"obs": padded(row["observations"], np.float32),
              "state": padded(row["infos"]["state"], np.float32),
              "actions": padded(row["actions"][..., None].astype(np.int64), np.int64),  # pymarl: long
              "avail_actions": padded(row["infos"]["legals"], np.int32),  # pymarl: int
              "reward": padded(rewards[:, :1], np.float32),
              "terminated": padded(last[:, None], np.uint8),  # pymarl: uint8
              "filled": padded(np.ones((len(times), 1), np.int64), np.int64)}  # pymarl: long
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {"episodes": int(len(lengths)), "steps": int(lengths.sum()), "slots": slots}
