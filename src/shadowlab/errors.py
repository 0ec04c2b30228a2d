"""The exception types users see.

Every error shadowlab raises on bad input derives from :class:`ShadowlabError`, which is a
``ValueError`` so that generic handlers keep working. Messages say what was wrong, where (file
and line, or the argument), what was expected and how to fix it.
"""

from __future__ import annotations

from os import PathLike


class ShadowlabError(ValueError):
    """Base class of every error shadowlab raises on bad input or an impossible request."""


class InputFormatError(ShadowlabError):
    """A file or string does not follow the format it claims.

    Parameters
    ----------
    message:
        What is wrong and what was expected.
    path:
        The file being read, if any.
    line:
        1-based line number in ``path`` where the problem is, if known.
    """

    def __init__(self, message: str, *, path: str | PathLike[str] | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
        elif line is not None:
            where = f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)


class StoreFormatError(ShadowlabError):
    """A shadow store is missing, corrupted, foreign, or of an unsupported format version."""


class QubitCountMismatchError(ShadowlabError):
    """Two inputs that must describe the same number of qubits do not."""


class EstimationError(ShadowlabError):
    """An estimate was requested that the data cannot support (no matching snapshots, ...)."""


class StateError(ShadowlabError):
    """A quantum state or circuit given as input is invalid (not normalized, wrong size, ...)."""


class ShadowlabWarning(UserWarning):
    """Base class of shadowlab's warnings: results are produced, but something deserves attention."""
