"""Shared test options: ``--device`` as in SpeechBrain's own test suite."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--device", action="store", default="cpu")


@pytest.fixture
def device(request):
    return request.config.getoption("--device")
