"""PRISM_* environment variables parse strictly."""

from __future__ import annotations

import pytest

from prism_core.errors import UsageError
from prism_core.settings import ENV_VARS, Settings


def test_from_env_parses_lists_and_flags() -> None:
    s = Settings.from_env(
        {
            "PRISM_PLUGINS": "cpu, nvidia,",
            "PRISM_DISABLE_PLUGINS": "amd",
            "PRISM_DISABLE_PLUGIN_AUTOLOAD": "yes",
            "PRISM_TRACE_PLUGINS": "1",
            "PRISM_LOG_LEVEL": "debug",
        }
    )
    assert s == Settings(frozenset({"cpu", "nvidia"}), frozenset({"amd"}), False, True, "DEBUG")


def test_defaults_when_unset_or_blank() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"PRISM_PLUGINS": "  ", "PRISM_TRACE_PLUGINS": ""}) == Settings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRISM_TRACE_PLUGINS": "maybe"}, "PRISM_TRACE_PLUGINS='maybe'"),
        ({"PRISM_LOG_LEVEL": "LOUD"}, "PRISM_LOG_LEVEL='LOUD'"),
    ],
)
def test_bad_values_are_usage_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Settings.from_env(env)


def test_every_variable_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [v for v in ENV_VARS if v not in readme]
    assert not missing, f"README does not document {missing}"
