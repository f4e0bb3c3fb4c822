"""``prodigy-users up``: run the stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import sys
from pathlib import Path

from . import CONSOLE, DEFAULT_DATA_DIR, SERVICES
from .process import StackError
from .supervisor import Stack, StackConfig

log = logging.getLogger("prodigy_users.stack")


def configure_console_logging(level: int = logging.INFO) -> None:
    """Short human lines on stderr; the children's output goes to their log files."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter that means nothing to someone running the stack.
    for name, floor in (
        ("mail.log", logging.WARNING),  # aiosmtpd: every SMTP command
        ("uvicorn", logging.WARNING),  # the mail view's server banner
        ("aiokafka", logging.CRITICAL),  # refused connections while a broker restarts
        ("asyncio", logging.WARNING),
        ("httpx", logging.WARNING),  # every /readyz poll
        ("httpcore", logging.WARNING),
    ):
        logging.getLogger(name).setLevel(max(floor, level))


def summary(stack: Stack) -> str:
    """Every address of the running stack, for the terminal."""
    rows: list[tuple[str, str]] = []
    if stack.config.console:
        rows.append((CONSOLE, stack.url(CONSOLE)))
    for name in SERVICES:
        url = stack.url(name)
        if name not in stack.config.services:
            env = shlex.quote(str(stack.env_file(name)))
            run = f"set -a; . {env}; set +a; prodigy-users serve {name}"
            rows.append((name, f"not started (--skip); run it yourself: {run}"))
            continue
        rows.append((name, f"{url}    docs: {url}/docs"))
        for index in range(2, stack.config.replicas + 1):
            rows.append((f"{name}-{index}", stack.url(name, index)))
    rows.append(("kafka", stack.bootstrap))
    smtp_host, smtp_port = stack.smtp
    rows.append(("smtp", f"{smtp_host}:{smtp_port}"))
    if stack.mail is not None:
        rows.append(("mail", f"{stack.url('mail')}/messages"))
    rows.append(("postgres", stack.postgres.url))
    rows.append(("logs", str(stack.logs_dir)))
    width = max(len(k) for k, _ in rows) + 2
    lines = []
    if stack.config.console:
        # First, where a person would look: the console serves every page of the system.
        lines += [f"open {stack.url(CONSOLE)}", ""]
    lines += [f"prodigy-users is up (data in {stack.data_dir})", ""]
    lines += [f"  {k.ljust(width)}{v}" for k, v in rows]
    lines += ["", f"Create a department:\n  {_create_hint(stack)}", "", "Press Ctrl-C to stop."]
    return "\n".join(lines)


def _create_hint(stack: Stack) -> str:
    args = ["prodigy-users", "create-department", "--name", "Station 1"]
    args += ["--admin-email", "chief@example.com", "--admin-name", "Pat Chief"]
    if stack.data_dir != Path(DEFAULT_DATA_DIR).resolve():
        args += ["--data-dir", str(stack.data_dir)]
    if "membership" in stack.config.services and stack.config.ports.membership != 8102:
        args += ["--membership-url", stack.url("membership")]
    if "identity" in stack.config.services and stack.config.ports.identity != 8101:
        args += ["--identity-url", stack.url("identity")]
    if stack.config.console and stack.config.ports.console != 8100:
        args += ["--console-url", stack.url(CONSOLE)]
    return shlex.join(args)


async def run(config: StackConfig) -> int:
    """Start, print the addresses, keep running; 0 after a clean stop."""
    stack = Stack(config)
    loop = asyncio.get_running_loop()
    starting = asyncio.current_task()
    assert starting is not None
    signals = 0
    started = False

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            # The children carry a parent-death signal: they stop when we are gone.
            print("\nforced exit; the stack's processes are stopping", file=sys.stderr)
            os._exit(130)
        log.info("%s received: stopping (press Ctrl-C again to force)", sig.name)
        stack.request_stop()
        if not started:
            starting.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            log.info("starting the embedded stack in %s", stack.data_dir)
            await stack.start()
        except asyncio.CancelledError:
            log.info("stopped before it was ready")
            return 0
        except (StackError, OSError) as exc:
            # Everything started so far has been stopped again by Stack.start.
            print(f"\nprodigy-users up: {exc}", file=sys.stderr)
            return 1
        started = True
        print("\n" + summary(stack) + "\n", flush=True)
        await stack.run_until_stopped()
        log.info("stopped")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(config: StackConfig) -> int:
    """Blocking entry point of ``prodigy-users up``."""
    configure_console_logging()
    return asyncio.run(run(config))
