"""The ONNX Runtime session layer: known outputs, validation, cache, threads, report."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from angio_deploy.backends import (
    ModelInputError,
    SessionConfig,
    available_cpu_count,
    cached_sessions,
    get_session,
)
from angio_deploy.backends import providers as P
from angio_deploy.backends import session as S
from angio_deploy.errors import BackendUnavailableError, InputError, InputNotFoundError

H, W = 160, 256


def _x(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, H, W)).astype(np.float32)


def test_tiny_model_gives_known_outputs(affine_model) -> None:
    sess = get_session(affine_model(scale=2.0, shift=1.0), provider="cpu")
    x = _x(3)
    out = sess.run(x)
    assert set(out) == {"logits"}
    np.testing.assert_allclose(out["logits"], 2.0 * x + 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sess(x[:1]), 2.0 * x[:1] + 1.0, rtol=0, atol=1e-6)
    assert sess.inputs[0].shape == ("batch", 1, H, W)
    assert sess.name == "tiny"


def test_report_records_provider_actually_used_and_hash(affine_model) -> None:
    import hashlib

    path = affine_model()
    sess = get_session(path, SessionConfig(intra_op_threads=1))
    rep = sess.report()
    assert rep["provider"] == sess._session.get_providers()[0] == "CPUExecutionProvider"
    assert rep["provider_short"] == "cpu"
    assert rep["requested_provider"] == "auto"
    assert rep["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rep["size_bytes"] == path.stat().st_size
    assert rep["intra_op_threads"] == 1
    assert rep["inter_op_threads"] == 1
    assert rep["graph_optimization"] == "all"
    assert rep["version"] == "1"


def test_default_threads_are_the_cores_this_process_may_use(affine_model) -> None:
    sess = get_session(affine_model())
    assert sess.config.intra_op_threads == available_cpu_count() >= 1
    assert sess.config.inter_op_threads == 1


def test_cache_returns_the_same_session_per_key(affine_model) -> None:
    path = affine_model()
    a = get_session(path)
    assert get_session(path) is a
    assert get_session(str(path), SessionConfig()) is a
    b = get_session(path, intra_op_threads=1)
    c = get_session(path, graph_optimization="basic")
    assert b is not a and c is not a and c is not b
    assert get_session(path, SessionConfig(intra_op_threads=1)) is b
    assert len(cached_sessions()) == 3


def test_edited_model_file_gets_a_new_session(affine_model) -> None:
    path = affine_model(scale=2.0)
    a = get_session(path)
    time.sleep(0.01)
    affine_model(scale=3.0)  # same path, new content
    b = get_session(path)
    assert b is not a
    np.testing.assert_allclose(b(_x(1)), 3.0 * _x(1) + 1.0, atol=1e-6)


def test_concurrent_first_use_creates_one_session(affine_model, monkeypatch) -> None:
    path = affine_model()
    created: list[int] = []
    real_init = S.ModelSession.__init__

    def slow_init(self, *args, **kwargs):
        created.append(threading.get_ident())
        time.sleep(0.2)  # widen the race window
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(S.ModelSession, "__init__", slow_init)
    n = 8
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            sess = get_session(path)
            results[i] = sess
            sess.run(_x(1, seed=i))  # concurrent runs on the shared session
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(created) == 1
    assert all(r is results[0] for r in results)


def test_concurrent_runs_give_each_caller_its_own_result(affine_model) -> None:
    sess = get_session(affine_model())
    xs = [_x(2, seed=i) for i in range(8)]
    outs: list[np.ndarray | None] = [None] * len(xs)

    def worker(i: int) -> None:
        outs[i] = sess(xs[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for x, y in zip(xs, outs, strict=True):
        np.testing.assert_allclose(y, 2.0 * x + 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("make_input", "match"),
    [
        (lambda: _x(1).astype(np.float64), "got dtype float64"),
        (lambda: _x(1)[0], r"got shape \(1, 160, 256\) \(3 dimensions\)"),
        (lambda: np.zeros((1, 1, 128, 256), np.float32), r"axis 2 is 128"),
        (lambda: np.zeros((1, 1, 160, 255), np.float32), r"axis 3 is 255"),
        (lambda: np.zeros((1, 3, 160, 256), np.float32), r"axis 1 is 3"),
        (lambda: np.zeros((0, 1, 160, 256), np.float32), "empty array"),
        (lambda: [[1.0]], "not a numpy array"),
        (lambda: {"img": _x(1)}, r"unknown input\(s\) \['img'\]"),
    ],
)
def test_input_validation_names_model_and_expected_shape(affine_model, make_input, match) -> None:
    sess = get_session(affine_model(name="segmenter-test"))
    with pytest.raises(ModelInputError, match=match) as info:
        sess.run(make_input())
    msg = str(info.value)
    assert "segmenter-test" in msg  # the model
    assert "float32 (N, 1, 160, 256)" in msg  # what it needs
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, ValueError)


def test_multi_input_model_needs_a_dict_with_every_input(affine_model) -> None:
    sess = get_session(affine_model(extra_input=True))
    with pytest.raises(ModelInputError, match="pass a dict"):
        sess.run(_x(1))
    with pytest.raises(ModelInputError, match=r"'bias'.*missing"):
        sess.run({"image": _x(1)})
    out = sess.run({"image": _x(1), "bias": np.array([0.5], np.float32)})["logits"]
    np.testing.assert_allclose(out, 2.0 * _x(1) + 1.5, atol=1e-6)


def test_non_contiguous_input_is_accepted(affine_model) -> None:
    sess = get_session(affine_model())
    big = _x(4)
    view = big[::2]
    assert not view.flags.c_contiguous
    np.testing.assert_allclose(sess(view), 2.0 * view + 1.0, atol=1e-6)


def test_explicit_unavailable_provider_raises_exit_69(affine_model) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider") as info:
        get_session(affine_model(), provider="cuda")
    assert info.value.exit_code == 69
    assert cached_sessions() == []


def test_provider_that_fails_to_start_is_not_silently_replaced(affine_model, monkeypatch) -> None:
    # The machine claims CUDA but ORT cannot start it (missing libraries): ORT falls back
    # to the CPU; an explicit request must fail instead of running somewhere else.
    monkeypatch.setattr(
        P, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    with pytest.raises(BackendUnavailableError, match="could not start CUDAExecutionProvider"):
        get_session(affine_model(), provider="cuda")
    # "auto" accepts what ORT could start and records it.
    assert get_session(affine_model(), provider="auto").provider == "CPUExecutionProvider"


def test_environment_variable_picks_the_provider(affine_model, monkeypatch) -> None:
    monkeypatch.setenv(P.ENV_PROVIDER, "cpu")
    sess = get_session(affine_model())
    assert sess.report()["requested_provider"] == "cpu"
    assert sess.provider == "CPUExecutionProvider"


def test_bad_settings_and_missing_file(affine_model, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="graph_optimization"):
        get_session(affine_model(), graph_optimization="max")
    with pytest.raises(ValueError, match="inter_op_threads"):
        get_session(affine_model(), inter_op_threads=0)
    with pytest.raises(InputNotFoundError, match="model file not found"):
        get_session(tmp_path / "nope.onnx")


@pytest.mark.parametrize("level", ["disabled", "basic", "extended", "all"])
def test_every_optimisation_level_runs(affine_model, level: str) -> None:
    sess = get_session(affine_model(), graph_optimization=level, allow_spinning=False)
    np.testing.assert_allclose(sess(_x(1)), 2.0 * _x(1) + 1.0, atol=1e-6)
