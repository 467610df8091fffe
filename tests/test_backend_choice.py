"""The kernel backend is chosen at import and can be forced to numpy (msgpack-style)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from angio_deploy import kernels

CODE = "import sys, angio_deploy.kernels as k; print(k.BACKEND); print('torch' in sys.modules)"


def _run(env_value: str | None) -> list[str]:
    env = dict(os.environ)
    env.pop(kernels.ENV_FORCE_NUMPY, None)
    if env_value is not None:
        env[kernels.ENV_FORCE_NUMPY] = env_value
    out = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_environment_variable_forces_numpy(value: str) -> None:
    assert _run(value)[0] == "numpy"


def test_default_is_native_when_built() -> None:
    backend, torch_loaded = _run(None)
    expected = "native" if "native" in kernels.available_backends() else "numpy"
    assert backend == expected
    assert torch_loaded == "False"


def test_unknown_backend_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kernel backend"):
        kernels.get_backend("cuda")
