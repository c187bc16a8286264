"""Published OG-MARL vaults: download, unpack into OG-MARL's layout, check their sizes.

OG-MARL publishes each scenario as one zip on the Hugging Face dataset
`InstaDeepAI/og-marl` (`og_marl/vault_utils/download_vault.py`, VAULT_INFO); unpacked
into `<rel_dir>/<source>/<env>/` it gives `<scenario>.vlt/<uid>/` for every uid at
once (og_marl_contract.md 5.1). Here the zip is fetched to a temporary file, unpacked
into a temporary folder beside the target, checked uid by uid against the sizes of
contract table 6.1 (N, O, A, S), and only then moved into place, so a failed or
refused download never leaves a partial vault behind. As in OG-MARL, nothing is
fetched when `<scenario>.vlt` already exists and is not empty.
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
