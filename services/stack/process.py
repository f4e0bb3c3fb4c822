"""Child processes the stack owns: spawned in their own process group, told to die
with the supervisor, logged to a file, stopped politely and then not so politely."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """Something the stack could not do; the message says what and where to look."""


class PortInUseError(StackError):
    """A port the stack needs is taken."""


def _death_signal_setter(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel send ``sig`` to the child when we die.

    It runs after the uid change (the kernel clears the setting on credential
    changes), so it also holds for children started as another user.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def setup() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl: nobody would tell us.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return setup


def port_owner(host: str, port: int) -> str | None:
    """Best effort: which process listens on ``port`` (needs the rights to see it)."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return None
                proc = psutil.Process(conn.pid)
                return f"{proc.name()} (pid {conn.pid})"
    return None


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise ``PortInUseError`` naming ``what`` and, if known, the owner of the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR: connections in TIME_WAIT from our own previous run do not count.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        owner = port_owner(host, port)
        by = f" by {owner}" if owner else ""
        raise PortInUseError(
            f"{what} cannot listen on {host}:{port}: the port is already in use{by}. "
            "Stop whatever holds it (another `prodigy-users up`?) or choose other ports "
            "(`--port NAME=PORT`, `--port-offset N`)."
        ) from exc
    finally:
        sock.close()


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ('' if there is none)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class ChildProcess:
    """One long-running child: its own process group, output appended to a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        death_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.death_signal = death_signal
        self._proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        """The process id while it has one."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited (negative: killed by that signal)."""
        return self._proc.returncode if self._proc is not None else None

    def is_alive(self) -> bool:
        """Started and not yet exited."""
        return self._proc is not None and self._proc.returncode is None

    async def spawn(self) -> None:
        """Start the process (its output goes to ``log_path``)."""
        if self.is_alive():
            raise StackError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        kwargs: dict[str, object] = {}
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        with self.log_path.open("ab") as log:
            log.write(f"---- {stamp} starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            # Spawned from the loop's thread on purpose: the death signal follows
            # the thread that forked, and a pool thread may exit before we do.
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # Own process group: Ctrl-C in the terminal reaches only the
                # supervisor, which then stops the children in order.
                process_group=0,
                preexec_fn=_death_signal_setter(self.death_signal),
                **kwargs,  # type: ignore[arg-type]
            )
        self.started_at = time.monotonic()

    async def wait(self, within: float | None = None) -> int | None:
        """Wait for the exit; the exit code, or None if still running after ``within`` seconds."""
        if self._proc is None:
            return None
        try:
            return await asyncio.wait_for(self._proc.wait(), within)
        except TimeoutError:
            return None

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process (not its group)."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def _kill_group(self) -> None:
        # Only while the leader is unreaped: until then its pid (= the group id)
        # cannot have been handed to another process.
        if self._proc is None or self._proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    async def kill(self) -> int | None:
        """SIGKILL the whole process group and reap the process."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self._kill_group()
        return await self._proc.wait()

    async def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = 10.0) -> int | None:
        """Ask with ``sig``; after ``grace`` seconds, kill. Returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self.send_signal(sig)
            if await self.wait(grace) is None:
                self._append_log(f"did not stop within {grace:.0f} s of {sig.name}: killed")
                return await self.kill()
        return self._proc.returncode

    def _append_log(self, line: str) -> None:
        with contextlib.suppress(OSError), self.log_path.open("a") as log:
            log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    def log_tail(self, lines: int = 30) -> str:
        """The end of this process's log."""
        return tail(self.log_path, lines)
