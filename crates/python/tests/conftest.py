"""The standard LangChain tests (tests/test_langchain.py) include coroutines: where
pytest-asyncio is installed, coroutine tests run on an event loop each (its "auto" mode)."""

from __future__ import annotations

import importlib.util

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if importlib.util.find_spec("pytest_asyncio") is not None:
        config.option.asyncio_mode = "auto"
        config.option.asyncio_default_fixture_loop_scope = "function"
