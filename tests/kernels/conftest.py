"""Fixtures for the kernel tests: the two kernel backends."""

from __future__ import annotations

import pytest

from angio_deploy import kernels

BACKENDS = ("native", "numpy")


def _bound(name: str) -> kernels.Kernels:
    if name not in kernels.available_backends():
        pytest.skip(f"the {name} kernel backend is not built")
    return kernels.get_backend(name)


# Session scope: hypothesis refuses function-scoped fixtures in @given tests.
@pytest.fixture(scope="session")
def native() -> kernels.Kernels:
    """The compiled backend (skips the test when the extension is not built)."""
    return _bound("native")


@pytest.fixture(scope="session")
def ref() -> kernels.Kernels:
    """The numpy twins, the executable specification."""
    return kernels.get_backend("numpy")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> kernels.Kernels:
    """Each backend in turn, for backend-independent property tests."""
    return _bound(request.param)
