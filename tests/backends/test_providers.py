"""Provider choice by what the machine has; explicit requests are honoured or refused."""

from __future__ import annotations

import pytest

from angio_deploy.backends import providers as P
from angio_deploy.errors import EX_UNAVAILABLE, BackendUnavailableError

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
CPU_ONLY = ["AzureExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        (ALL, ALL),
        (list(reversed(ALL)), ALL),  # preference order, not ORT's listing order
        (["CUDAExecutionProvider", "CPUExecutionProvider"], ALL[1:]),
        (CPU_ONLY, ["CPUExecutionProvider"]),
    ],
)
def test_auto_prefers_tensorrt_then_cuda_then_cpu(available, expected) -> None:
    assert P.resolve_providers("auto", available) == expected


def test_explicit_provider_comes_first_with_lower_fallbacks() -> None:
    assert P.resolve_providers("cuda", ALL) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert P.resolve_providers("cpu", ALL) == ["CPUExecutionProvider"]
    assert P.resolve_providers("TensorrtExecutionProvider", ALL) == ALL
    assert P.resolve_providers("trt", ALL) == ALL


@pytest.mark.parametrize("request_", ["cuda", "tensorrt", "CUDAExecutionProvider", "gpu"])
def test_explicit_unavailable_provider_is_refused(request_: str) -> None:
    with pytest.raises(BackendUnavailableError) as info:
        P.resolve_providers(request_, CPU_ONLY)
    assert info.value.exit_code == EX_UNAVAILABLE == 69
    msg = str(info.value)
    assert P.canonical_name(request_) in msg
    assert "CPUExecutionProvider" in msg  # says what the machine does have


def test_unknown_provider_name_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="unknown execution provider"):
        P.resolve_providers("quantum", ALL)


def test_no_usable_provider_at_all() -> None:
    with pytest.raises(BackendUnavailableError):
        P.resolve_providers("auto", ["AzureExecutionProvider"])


def test_environment_sets_the_default_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P.ENV_PROVIDER, "cpu")
    assert P.default_request() == "cpu"
    assert P.resolve_providers(None, ALL) == ["CPUExecutionProvider"]
    monkeypatch.delenv(P.ENV_PROVIDER)
    assert P.default_request() == "auto"
    assert P.resolve_providers(None, ALL) == ALL


def test_machine_default_uses_installed_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    chosen = P.resolve_providers("auto")
    assert chosen[-1] == "CPUExecutionProvider"
    assert set(chosen) <= set(ort.get_available_providers())


def test_missing_onnxruntime_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendUnavailableError, match="onnxruntime is not installed"):
        P.available_providers()
