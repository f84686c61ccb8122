"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.tiny_pipelines import build_tiny_pipeline
from tests.tiny_video_pipelines import build_tiny_video_pipeline

# The test machines share a few cores between workers; one thread also keeps CPU runs reproducible.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Returns `get(arch) -> folder`, building each tiny pipeline once per test session."""
    root = tmp_path_factory.mktemp("tiny_pipelines")
    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = build_tiny_pipeline(arch, root / arch)
        return built[arch]

    return get


@pytest.fixture(scope="session")
def tiny_video_pipelines(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Returns `get(arch) -> folder` for the tiny video pipelines, each built once per test session."""
    root = tmp_path_factory.mktemp("tiny_video_pipelines")
    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = build_tiny_video_pipeline(arch, root / arch)
        return built[arch]

    return get
