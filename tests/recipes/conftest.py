"""Fixtures for the recipe tests: the recipes' prepare modules, loaded from their files.

Authors
 * fastast developers 2026
"""

import importlib.util

import pytest
from recipe_helpers import RECIPES


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sc_prepare():
    """``recipes/SpeechCommands/sc_prepare.py`` as a module."""
    return _load(RECIPES / "SpeechCommands" / "sc_prepare.py", "sc_prepare")


@pytest.fixture(scope="session")
def esc50_prepare():
    """``recipes/ESC50/esc50_prepare.py`` as a module."""
    return _load(RECIPES / "ESC50" / "esc50_prepare.py", "esc50_prepare")
