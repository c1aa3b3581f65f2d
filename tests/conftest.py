"""Shared fixtures: dtype and static/symbolic shapes, the axes every converter is tested on."""

from __future__ import annotations

import warnings

import pytest

warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")


@pytest.fixture(params=["float32", "float64"])
def floatX(request: pytest.FixtureRequest) -> str:
    """Each float dtype PyTensor users compute in."""
    return request.param


@pytest.fixture(params=[False, True], ids=["static", "symbolic"])
def symbolic(request: pytest.FixtureRequest) -> bool:
    """Whether test inputs have unknown (symbolic) dimensions instead of static ones."""
    return request.param
