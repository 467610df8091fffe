"""A headless Chromium driven over the DevTools protocol, for the report page tests.

The protocol runs over ``--remote-debugging-pipe`` (NUL-terminated JSON on file
descriptors 3 and 4), so no WebSocket client and no free port are needed. WebGL has no GPU
in CI: ANGLE's SwiftShader backend renders it in software (``--use-angle=swiftshader``;
Chromium 12x+ also wants ``--enable-unsafe-swiftshader`` before it falls back to it).
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Debian's launcher script is /usr/bin/chromium; the binary behind it starts faster.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--remote-debugging-pipe",
    "--no-sandbox",  # CI runs as root
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    """The Chromium executable: $ANGIO_CHROMIUM (None if that is not an executable), else
    the first candidate installed."""
    env = os.environ.get("ANGIO_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for c in CANDIDATES:
        path = c if os.path.isabs(c) and os.access(c, os.X_OK) else shutil.which(c)
        if path:
            return path
    return None


#: DevTools errors of a Runtime.evaluate that reached a tab between two documents.
BETWEEN_DOCUMENTS = (
    "Inspected target navigated or closed",
    "Cannot find context with specified id",
    "Execution context was destroyed",
)


class Page:
    """One tab: navigate, evaluate, screenshot, and every console/log event it raised."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                value = self.evaluate(expression)
            except RuntimeError as exc:
                # Evaluated while the tab swaps documents (a click or navigate in
                # flight): Chromium answers with one of these; the next poll sees the
                # new document.
                if not any(m in str(exc) for m in BETWEEN_DOCUMENTS):
                    raise
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"{expression} still falsy after {timeout} s")

    def open(self, path: Path) -> None:
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, selector: str) -> np.ndarray:
        """RGB pixels (H, W, 3) uint8 of the element ``selector`` as on screen."""
        from PIL import Image

        rect = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + scrollX, r.y + scrollY, r.width, r.height];"
            " })()"
        )
        clip = dict(zip(("x", "y", "width", "height"), rect, strict=True), scale=1)
        shot = self.send("Page.captureScreenshot", {"format": "png", "clip": clip})
        im = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
        return np.asarray(im)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries (a blocked
        request, a CSP violation) of this page so far."""
        out = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                args = [a.get("value", a.get("description")) for a in p.get("args", [])]
                out.append(f"console.{p['type']}: {args}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails']}")
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')}")
        return out


class Browser:
    """A headless Chromium process and its DevTools pipe."""

    def __init__(self, exe: str, profile: Path, size: tuple[int, int] = (1280, 1400)) -> None:
        to_child, from_child = os.pipe(), os.pipe()
        # Above 10, so that moving them to 3 and 4 in the child cannot overwrite each other.
        r_cmd, w_cmd = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in to_child)
        r_evt, w_evt = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in from_child)
        for fd in (*to_child, *from_child):
            os.close(fd)

        def child_fds() -> None:
            os.dup2(r_cmd, 3)  # dup2 clears close-on-exec: the browser inherits 3 and 4
            os.dup2(w_evt, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"],
            preexec_fn=child_fds,
            close_fds=False,  # our other descriptors are close-on-exec anyway (PEP 446)
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(r_cmd)
        os.close(w_evt)
        self.w, self.r = w_cmd, r_evt
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _message(self, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while b"\0" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            if select.select([self.r], [], [], left)[0]:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit {self.proc.poll()})")
                self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            r = self._message(60.0)
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error']}")
                return r["result"]
            self.events.append(r)

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        for domain in ("Runtime", "Log", "Page"):
            page.send(f"{domain}.enable")
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=20)
        except (OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self.w)
            os.close(self.r)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    exe = find_chromium()
    if exe is None:
        pytest.skip(
            "no Chromium found (apt-get install chromium, or set ANGIO_CHROMIUM to its "
            "executable): the headless-browser tests of report.html need one"
        )
    b = Browser(exe, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.close()


def make_tube(n_rings: int = 20, n_around: int = 12, length: float = 30.0):
    """An open tube along x (world mm), ring-major vertices, radius 0.5 -> 2 mm along it:
    vertices (N, 3), faces (M, 3), diameter per vertex (N,)."""
    t = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    x = np.linspace(-length / 2, length / 2, n_rings)
    r = np.linspace(0.5, 2.0, n_rings)
    v = np.array(
        [[xi, ri * np.cos(a), ri * np.sin(a)] for xi, ri in zip(x, r, strict=True) for a in t]
    )
    faces = []
    for i in range(n_rings - 1):
        for j in range(n_around):
            a, b = i * n_around + j, i * n_around + (j + 1) % n_around
            faces += [[a, b, a + n_around], [b, b + n_around, a + n_around]]
    return v, np.array(faces, dtype=np.int64), np.repeat(2 * r, n_around)


@pytest.fixture
def tube():
    """:func:`make_tube`."""
    return make_tube
