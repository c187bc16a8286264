"""Systems by name: built-ins, run-time registration, entry points, clear errors."""

from __future__ import annotations

import sys
import textwrap

import pytest

from og_marl_inspo import registry


def test_unknown_name_lists_the_registered_ones(xor_env):
    with pytest.raises(ValueError) as err:
        registry.get_system("bcc", xor_env)
    assert "unknown system 'bcc'; registered: " in str(err.value) and "bc" in str(err.value)


def test_builtin_bc_is_built_with_its_config(xor_env):
    system = registry.get_system("bc", xor_env, None, learning_rate=0.01)
    assert system.config.learning_rate == 0.01 and system.agents == ["agent_0", "agent_1"]
    assert registry.system_config_class("bc").__name__ == "BCConfig"


def test_register_at_run_time(xor_env):
    made = []
    registry.register("toy", lambda env, logger, **kw: made.append(kw) or "toy-system")
    try:
        assert "toy" in registry.list_systems()
        assert registry.get_system("toy", xor_env, None, alpha=1) == "toy-system"
        assert made == [{"alpha": 1}]
    finally:
        registry._REGISTERED.pop("toy")


def test_entry_point_adds_a_system_without_editing_the_package(tmp_path, monkeypatch, xor_env):
    (tmp_path / "plugin_pkg.py").write_text(textwrap.dedent("""
        class PluginSystem:
            def __init__(self, environment, logger=None, **kwargs):
                self.kwargs = kwargs
    """))
    dist = tmp_path / "plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[og_marl.systems]\nplugged = plugin_pkg:PluginSystem\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "plugged" in registry.list_systems()
    system = registry.get_system("plugged", xor_env, None, beta=2)
    assert type(system).__name__ == "PluginSystem" and system.kwargs == {"beta": 2}
    sys.modules.pop("plugin_pkg", None)


def test_bad_system_field_names_the_field(xor_env):
    with pytest.raises(ValueError, match="config field system.learning_rate: must be > 0"):
        registry.get_system("bc", xor_env, None, learning_rate=-1.0)
    with pytest.raises(ValueError, match="config field system.eval_mode"):
        registry.get_system("bc", xor_env, None, eval_mode="softmax")
