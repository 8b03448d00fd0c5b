"""Settings come from SLIPWAY_* variables, typed and validated."""

from pathlib import Path

import pytest

from slipway.settings import Settings


def test_defaults_without_environment() -> None:
    """With no variables set, the documented defaults apply."""
    settings = Settings.from_env({"HOME": "/home/x"})
    assert settings.gateway_address == "0.0.0.0:8080"
    assert settings.gateway_url == "http://127.0.0.1:8080"
    assert settings.namespace is None
    assert settings.cluster_port == 16443


def test_variables_are_parsed_and_typed() -> None:
    """SLIPWAY_* values are converted to the field's type."""
    settings = Settings.from_env(
        {
            "SLIPWAY_CLUSTER_PORT": "17000",
            "SLIPWAY_NAMESPACE": "caps",
            "SLIPWAY_CACHE_DIR": "/tmp/c",
            "KUBEBUILDER_ASSETS": "/opt/assets",
        }
    )
    assert settings.cluster_port == 17000
    assert settings.namespace == "caps"
    assert settings.cache_dir == Path("/tmp/c")
    assert settings.kubebuilder_assets == Path("/opt/assets")


def test_unknown_variable_is_an_error_naming_it() -> None:
    """A typo in a SLIPWAY_* name fails loudly instead of being ignored."""
    with pytest.raises(ValueError, match="SLIPWAY_GATEWAY_ADRESS"):
        Settings.from_env({"SLIPWAY_GATEWAY_ADRESS": "x"})


def test_tool_contract_variables_are_not_settings() -> None:
    """SLIPWAY_EVENT and the callback variables belong to tools and are ignored here."""
    Settings.from_env({"SLIPWAY_EVENT": "{}", "SLIPWAY_CALLBACK_TOKEN": "t"})


def test_invalid_value_is_an_error() -> None:
    """A value of the wrong type is rejected with the field's name."""
    with pytest.raises(ValueError, match="cluster_port"):
        Settings.from_env({"SLIPWAY_CLUSTER_PORT": "many"})
