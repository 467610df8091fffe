"""The case id on every log record a case's run produces.

A host application running many cases (in threads, or one after another) wants each log
record tied to its case. Passing a ``logging.LoggerAdapter`` down through every pipeline
function would change the signature of each of them and still miss records from modules
that log through their own ``logging.getLogger(__name__)``. Instead the case id is held
in a :mod:`contextvars` variable for the duration of a run (:func:`case_context`, which
:meth:`angio_deploy.api.Reconstructor.reconstruct` enters): it is per thread (and per
asyncio task), so concurrent runs never see each other's id, and every record created in
the run's context gets it:

- :func:`install_record_factory` (called when a ``Reconstructor`` is created) chains a
  log-record factory that sets ``record.case_id`` on every record (None outside a run),
  so a format string may use ``%(case_id)s`` with no further setup;
- :class:`CaseIdFilter` does the same as a handler filter, for a host that manages
  record factories itself;
- :class:`CaseLogAdapter` is the ``LoggerAdapter`` the API logs its own records through:
  it logs inside the case's context (so the factory or filter sets ``case_id``; an
  ``extra`` key would collide with the factory's attribute) and prefixes the message
  with ``[case_id]`` for plain formats.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

__all__ = [
    "CaseIdFilter",
    "CaseLogAdapter",
    "case_context",
    "current_case_id",
    "install_record_factory",
]

_CASE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "angio_deploy_case_id", default=None
)
_installed = False
_lock = threading.Lock()


def current_case_id() -> str | None:
    """The id of the case the calling context is running (None outside a run)."""
    return _CASE_ID.get()


@contextlib.contextmanager
def case_context(case_id: str | None) -> Iterator[None]:
    """``with case_context(id):`` records created in this context carry ``case_id``."""
    token = _CASE_ID.set(case_id)
    try:
        yield
    finally:
        _CASE_ID.reset(token)


def install_record_factory() -> None:
    """Chain a record factory that sets ``record.case_id`` (idempotent, thread-safe); the
    factory installed before it still makes the record."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if not hasattr(record, "case_id"):
                record.case_id = _CASE_ID.get()
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


class CaseIdFilter(logging.Filter):
    """A handler filter that sets ``record.case_id`` from the running case (keeps one the
    record already has); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "case_id", None) is None:
            record.case_id = _CASE_ID.get()
        return True


class CaseLogAdapter(logging.LoggerAdapter):
    """A LoggerAdapter for one case: its records carry ``case_id`` (logged inside
    :func:`case_context`) and their message starts with ``[case_id]``."""

    def __init__(self, logger: logging.Logger, case_id: str | None):
        super().__init__(logger, {"case_id": case_id})
        self.case_id = case_id

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return f"[{self.case_id}] {msg}", kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        # stacklevel: name the caller of info()/warning(), not this method.
        kwargs.setdefault("stacklevel", 2)
        with case_context(self.case_id):
            super().log(level, msg, *args, **kwargs)
