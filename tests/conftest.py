"""Shared fixtures: locally built vaults (no network), small configs."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def vault_root(tmp_path_factory):
    """A rel_dir holding the inspo XOR and M-NE vaults, built once per session."""
    from og_marl_inspo.data.collect import build_datasets

    root = tmp_path_factory.mktemp("vaults")
    build_datasets("inspo", "matrix", "xor", rel_dir=str(root))
    build_datasets("inspo", "matrix", "m_ne", rel_dir=str(root))
    return str(root)


@pytest.fixture()
def xor_env():
    from og_marl_inspo.envs import get_environment

    return get_environment("inspo", "matrix", "xor")
