"""The native core's thread count: where the default comes from, process and per-context
settings, what reaches the backend, and that the values never depend on it."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.backends.session import available_cpu_count


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    monkeypatch.delenv(kernels.ENV_THREADS, raising=False)
    kernels.set_threads(None)
    yield
    kernels.set_threads(None)


def test_default_is_the_affinity_count_not_the_machine() -> None:
    n = kernels.default_threads()
    assert n == available_cpu_count()
    assert n <= len(os.sched_getaffinity(0))


def test_env_var_and_bad_values(monkeypatch, caplog) -> None:
    monkeypatch.setenv(kernels.ENV_THREADS, "3")
    assert kernels.default_threads() == kernels.get_threads() == 3
    monkeypatch.setenv(kernels.ENV_THREADS, "lots")
    assert kernels.default_threads() == available_cpu_count()
    assert any("ANGIO_DEPLOY_THREADS" in r.getMessage() for r in caplog.records)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            kernels.set_threads(bad)  # type: ignore[arg-type]


def test_precedence_call_context_process_default(monkeypatch) -> None:
    monkeypatch.setenv(kernels.ENV_THREADS, "5")
    kernels.set_threads(2)
    assert kernels.get_threads() == 2
    with kernels.thread_limit(1):
        assert kernels.get_threads() == 1
        with kernels.thread_limit(None):  # None keeps the current limit
            assert kernels.get_threads() == 2
    assert kernels.get_threads() == 2
    kernels.set_threads(None)
    assert kernels.get_threads() == 5


def test_context_limit_is_per_thread() -> None:
    seen: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def run(name: str, n: int) -> None:
        with kernels.thread_limit(n):
            barrier.wait()  # both inside their block at once
            seen[name] = kernels.get_threads()
            barrier.wait()

    ts = [threading.Thread(target=run, args=(k, n)) for k, n in (("a", 1), ("b", 3))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert seen == {"a": 1, "b": 3}


class _Recorder:
    """A backend that records the thread count it is given."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def sample_bilinear(self, maps, uv, width, height, threads):
        self.threads.append(threads)
        return np.zeros((len(uv), 1), maps[0].dtype)

    def tube_path_lengths(self, P, c, ax, md, width, height, s, threads):
        self.threads.append(threads)
        return np.zeros((height, width))


def _tube_args():
    from angio_deploy.geometry import ViewGeometry

    g = ViewGeometry.from_angles(0.0, 0.0, 1000.0, 750.0, (0.5, 0.5), 64, 64)
    c = np.array([[-5.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    return g.P, c, np.full((2, 2), 1.5), np.array([[0.0, 1.0, 0.0]] * 2), 64, 64


def test_the_backend_gets_the_limit(monkeypatch) -> None:
    k = kernels.Kernels("numpy")
    rec = _Recorder()
    monkeypatch.setattr(k, "_impl", rec)
    maps = [np.zeros((4, 4, 1), np.float32)]
    uv = np.zeros((3, 2))
    kernels.set_threads(4)
    k.sample_bilinear(maps, uv, 8, 8)
    with kernels.thread_limit(2):
        k.sample_bilinear(maps, uv, 8, 8)
        k.tube_path_lengths(*_tube_args())
    k.tube_path_lengths(*_tube_args(), threads=7)
    assert rec.threads == [4, 2, 2, 7]
    with pytest.raises(ValueError, match="positive integer"):
        k.sample_bilinear(maps, uv, 8, 8, threads=0)


@pytest.mark.parametrize("backend", kernels.available_backends())
def test_values_do_not_depend_on_the_thread_count(backend) -> None:
    k = kernels.get_backend(backend)
    rng = np.random.default_rng(3)
    # Enough rows for the native core to split the work (see csrc/sampling.cpp).
    maps = [rng.random((32, 48, 4)).astype(np.float32), rng.random((16, 24, 2)).astype(np.float32)]
    uv = rng.random((100_000, 2)) * [255.0, 191.0]
    ref = k.sample_bilinear(maps, uv, 256, 192, threads=1)
    for n in (2, 3, 8, 64):
        assert np.array_equal(k.sample_bilinear(maps, uv, 256, 192, threads=n), ref)
    from angio_deploy.geometry import ViewGeometry

    g = ViewGeometry.from_angles(10.0, 5.0, 1000.0, 750.0, (0.3, 0.3), 512, 512)
    t = np.linspace(-30.0, 30.0, 40)
    c = np.stack([t, 5.0 * np.sin(t / 10.0), np.zeros_like(t)], axis=1)
    ax = np.full((40, 2), 2.0)
    md = np.tile([0.0, 0.0, 1.0], (40, 1))
    ref = k.tube_path_lengths(g.P, c, ax, md, 512, 512, 2, threads=1)
    assert ref.max() > 0
    for n in (2, 5):
        assert np.array_equal(k.tube_path_lengths(g.P, c, ax, md, 512, 512, 2, threads=n), ref)
