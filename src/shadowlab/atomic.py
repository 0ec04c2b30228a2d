"""Write files so that a failure or Ctrl-C never leaves a partial output behind.

Outputs are written under a temporary name in the destination directory and renamed into
place only once complete (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shadowlab.errors import ShadowlabError


def check_can_write(path: str | os.PathLike[str], *, force: bool) -> Path:
    """Return ``path`` as a Path; raise if it exists and ``force`` is false."""
    p = Path(path)
    if p.exists() and not force:
        raise ShadowlabError(f"{p} already exists; pass --force (force=True) to overwrite it")
    return p


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, force: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    Works for files and directories (e.g. a Zarr store). On any exception the temporary is
    removed and ``path`` is left untouched.

    ``suffix`` is appended to the temporary name, for writers that insist on an extension
    (``numpy.savez`` adds ``.npz`` otherwise).
    """
    final = check_can_write(path, force=force)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
