"""Writing a file so that a reader sees the old content or the new, never half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path | str, data: str | bytes, *, mode: int | None = None) -> None:
    """Write `data` (str as UTF-8) to `path` through a temp file in the same directory and os.replace.

    The temp file is flushed to disk before the rename, so a crash leaves the
    old file or the new one. `mode` sets the file's permissions (mkstemp's
    default is 0600, readable by the owner only; a textfile collector running
    as another user needs e.g. 0o644). OSError when the directory cannot be
    written; the temp file is then removed.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
