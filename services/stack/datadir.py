"""The stack's data directory: one supervisor at a time (a lock file), and ``--fresh``
removes only what the stack made."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from .process import StackError

log = logging.getLogger(__name__)

LOCK = "stack.lock"
MARKER = ".prodigy-stack"


class StackLockedError(StackError):
    """Another supervisor runs on the same data directory."""


class DataDir:
    """``path`` with an exclusive lock held from ``lock()`` to ``unlock()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def lock(self, *, wipe: bool = False) -> None:
        """Take the lock (or fail naming the holder); with ``wipe``, empty the directory.

        The lock is an ``flock``: it goes away with the process, however it ends.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StackLockedError(
                f"another prodigy-users stack (pid {holder}) is already running on "
                f"{self.path}; stop it first or use another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        marker = self.path / MARKER
        if not marker.exists():
            # Never empty a directory we did not make (think `--data-dir ~ --fresh`).
            if wipe and any(p.name != LOCK for p in self.path.iterdir()):
                self.unlock()
                raise StackError(
                    f"refusing to wipe {self.path}: it is not empty and was not made by "
                    f"prodigy-users (no {MARKER} file in it)"
                )
            marker.write_text("data of the prodigy-users embedded stack\n")
        if wipe:
            self._wipe()

    def unlock(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _wipe(self) -> None:
        log.info("stack: --fresh: removing the data in %s", self.path)
        for entry in self.path.iterdir():
            if entry.name in (LOCK, MARKER):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
