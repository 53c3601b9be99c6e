import pytest


@pytest.fixture(autouse=True, scope="session")
def plugin_parsers():
    """The host's parser registries pointing at the plugin's detectors (idempotent)."""
    from dsv32_plugin.hooks.parsers import install

    install()
