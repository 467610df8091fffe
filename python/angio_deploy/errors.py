"""Exceptions users can cause, and the exit codes the CLI maps them to.

Everything a user can get wrong (a bad case folder, an unreadable DICOM, a missing tag,
an SOI outside the image, views too close together) raises :class:`InputError` or one
of its subclasses. The message names the file, tag or field at fault. Callers embedding
the API catch ``InputError``; the CLI turns ``exit_code`` into its exit status
(CASE_FORMAT.md: 65 bad input data, 66 input not found, 69 backend unavailable,
73 the output folder cannot be written or would lose data, 130 a run cancelled by its
caller).
"""

from __future__ import annotations

# sysexits.h values, as CASE_FORMAT.md specifies.
EX_OK = 0
EX_USAGE = 2
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
#: 128 + SIGINT, what shells report for a run stopped on request.
EX_CANCELLED = 130


class AngioDeployError(Exception):
    """Base class of every error angio-deploy raises on purpose."""

    exit_code: int = EX_SOFTWARE


class InputError(AngioDeployError, ValueError):
    """Bad input data: case folder, DICOM file, geometry or segment-of-interest points.

    ``source`` names the file (or case folder) and ``field`` the JSON key or DICOM tag
    at fault, when known; both are also in the message.
    """

    exit_code = EX_DATAERR

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = None if source is None else str(source)
        self.field = field
        self.message = message  # without the source and field prefix
        parts = []
        if self.source:
            parts.append(self.source)
        if field:
            parts.append(field)
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ImplausibleResultError(InputError):
    """The reconstruction finished but is obviously wrong (the mesh covers the vessel in
    neither view, or its rings exploded): not written unless forced. Bad input (wrong
    geometry, wrong clicks) is the usual cause, so it maps to exit 65."""


class InputNotFoundError(InputError, FileNotFoundError):
    """A case folder, case.json or image file named by the user does not exist."""

    exit_code = EX_NOINPUT


class BackendUnavailableError(AngioDeployError, RuntimeError):
    """A requested inference backend (CUDA, TensorRT, native core) is not available."""

    exit_code = EX_UNAVAILABLE


class OutputError(AngioDeployError, OSError):
    """The output folder cannot be created, or writing it would lose data that is not an
    earlier result (CASE_FORMAT.md, "Output"). ``source`` names the folder."""

    exit_code = EX_CANTCREAT

    def __init__(self, message: str, *, source: str | object | None = None):
        self.source = None if source is None else str(source)
        super().__init__(f"{self.source}: {message}" if self.source else message)

    def __str__(self) -> str:  # OSError's own __str__ would show the args tuple
        return str(self.args[0])


class Cancelled(AngioDeployError):
    """A run stopped because its caller cancelled it (``angio_deploy.api.CancelToken``),
    between two stages; nothing was written. ``source`` names the case."""

    exit_code = EX_CANCELLED

    def __init__(self, message: str = "cancelled", *, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
