"""The ``prodigy-users`` command line.

Every subcommand is one entry of ``SUBCOMMANDS``: a help line, a function that
adds its arguments, and a function that runs it and returns the exit code.
Heavy imports happen inside the run functions, so ``serve`` starts quickly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import DEFAULT_DATA_DIR as _DEFAULT_DATA_DIR
from . import SERVABLE
from . import SERVICES as SERVICE_NAMES

DEFAULT_DATA_DIR = Path(_DEFAULT_DATA_DIR)


@dataclass(frozen=True)
class Subcommand:
    """One ``prodigy-users <name>``."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _fail(command: str, message: str) -> int:
    print(f"prodigy-users {command}: {message}", file=sys.stderr)
    return 1


# ---- up ---------------------------------------------------------------------


def _port_override(text: str) -> tuple[str, int]:
    name, sep, port = text.partition("=")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PORT (e.g. kafka=29092), got {text!r}")
    return name.strip(), int(port)


def _services_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVABLE]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {', '.join(unknown)}; services: {', '.join(SERVABLE)}"
        )
    return names


def _up_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where data is kept")
    p.add_argument("--fresh", action="store_true", help="start empty (removes the data dir)")
    p.add_argument("--replicas", type=int, default=1, help="processes per service (default 1)")
    p.add_argument(
        "--port-offset", type=int, default=0, help="add N to every default port (two stacks)"
    )
    p.add_argument(
        "--port",
        type=_port_override,
        action="append",
        default=[],
        metavar="NAME=PORT",
        help="one port: console, identity, membership, notifications, reporting, kafka, "
        "smtp, mail_http, postgres (repeatable)",
    )
    p.add_argument(
        "--skip",
        type=_services_list,
        default=[],
        metavar="SERVICES",
        help="comma-separated services not to start (e.g. to run one in a debugger; "
        "`prodigy-users serve NAME` with the same environment)",
    )
    p.add_argument("--postgres-url", help="use this PostgreSQL server instead of starting one")
    p.add_argument("--kafka-bootstrap", help="use these Kafka brokers instead of starting Tansu")
    p.add_argument("--smtp", metavar="HOST:PORT", help="send mail here instead of capturing it")


def _up(args: argparse.Namespace) -> int:
    from .supervisor import Ports, StackConfig
    from .up import main

    if args.replicas < 1:
        return _fail("up", "--replicas must be at least 1")
    try:
        ports = Ports().offset(args.port_offset).replace(dict(args.port))
    except ValueError as exc:
        return _fail("up", str(exc))
    smtp_host: str | None = None
    smtp_port: int | None = None
    if args.smtp:
        host, _, port = str(args.smtp).rpartition(":")
        if not host or not port.isdigit():
            return _fail("up", f"--smtp expects HOST:PORT, got {args.smtp!r}")
        smtp_host, smtp_port = host, int(port)
    config = StackConfig(
        data_dir=args.data_dir,
        ports=ports,
        fresh=args.fresh,
        postgres_url=args.postgres_url,
        kafka_bootstrap=args.kafka_bootstrap,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        replicas=args.replicas,
        services=tuple(s for s in SERVICE_NAMES if s not in args.skip),
        console="console" not in args.skip,
    )
    return main(config)


# ---- serve / migrate ----------------------------------------------------------


def _service_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=SERVICE_NAMES, help="which service")


def _servable_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=SERVABLE, help="which service (or the web console)")


def _serve(args: argparse.Namespace) -> int:
    if args.name == "console":
        from prodigy_users.console.app import serve as serve_console

        serve_console()
        return 0
    from prodigy_users.runtime.service import serve

    app = importlib.import_module(f"prodigy_users.{args.name}.app")
    serve(app.spec())
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from prodigy_users.runtime.db import upgrade

    url = os.environ.get("PRODIGY_DATABASE_URL")
    if not url:
        return _fail("migrate", "PRODIGY_DATABASE_URL is not set (the service's database URL)")
    upgrade(args.name, url)
    print(f"{args.name}: database at head")
    return 0


# ---- create-department --------------------------------------------------------


def _create_department_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="the department's name")
    p.add_argument("--admin-email", required=True, help="email of its first admin")
    p.add_argument("--admin-name", required=True, help="name of its first admin")
    p.add_argument(
        "--admin-password", help="set this password now (else a set-password link is printed)"
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the stack's data dir")
    p.add_argument("--membership-url", default="http://127.0.0.1:8102")
    p.add_argument("--identity-url", default="http://127.0.0.1:8101")
    p.add_argument(
        "--console-url",
        default="http://127.0.0.1:8100",
        help="the console, for the department's address in the output ('' for none)",
    )
    p.add_argument(
        "--signing-key",
        type=Path,
        help="identity's private key (default: $PRODIGY_SIGNING_KEY_PATH, else "
        "<data-dir>/keys/signing.pem)",
    )


def _create_department(args: argparse.Namespace) -> int:
    import httpx

    from .departments import (
        Endpoints,
        OperatorError,
        create_department,
        operator_token,
        signing_key_path,
    )

    try:
        token = operator_token(signing_key_path(args.signing_key, args.data_dir), args.data_dir)
        with httpx.Client(timeout=10.0) as client:
            out = create_department(
                client,
                Endpoints(
                    membership=args.membership_url,
                    identity=args.identity_url,
                    console=args.console_url or None,
                ),
                token,
                name=args.name,
                admin_email=args.admin_email,
                admin_name=args.admin_name,
                admin_password=args.admin_password,
            )
    except OperatorError as exc:
        return _fail("create-department", str(exc))
    print(json.dumps(out, indent=2))
    return 0


# ---- contracts and asyncapi -----------------------------------------------------


def _contracts_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["export"], help="export the JSON Schemas")
    p.add_argument("--dir", type=Path, default=None, help="target (default: contracts/schemas)")
    p.add_argument("--check", action="store_true", help="only report drift; exit 1 if stale")


def _contracts(args: argparse.Namespace) -> int:
    from prodigy_users.contracts.schema_export import main_export

    return main_export(args.dir, check=args.check)


def _asyncapi_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", type=Path, default=None, help="write here instead of stdout")


def _asyncapi(args: argparse.Namespace) -> int:
    from prodigy_users.contracts.asyncapi import main_asyncapi

    return main_asyncapi(args.output)


# ---- the table ------------------------------------------------------------------

SUBCOMMANDS: dict[str, Subcommand] = {
    "up": Subcommand(
        "run the embedded stack (PostgreSQL, Kafka, mail capture, the four services, the console)",
        _up_arguments,
        _up,
    ),
    "serve": Subcommand(
        "run one service (or the web console) in the foreground", _servable_argument, _serve
    ),
    "migrate": Subcommand(
        "upgrade one service's database ($PRODIGY_DATABASE_URL) to head",
        _service_argument,
        _migrate,
    ),
    "migrations": Subcommand(
        "write a service's next migration from its models (new SERVICE -m MESSAGE), or "
        "check that every service's models and migrations agree (check)",
        lambda p: importlib.import_module("prodigy_users.stack.revisions").add_arguments(p),
        lambda args: int(importlib.import_module("prodigy_users.stack.revisions").run(args)),
    ),
    "create-department": Subcommand(
        "create a department and its first admin on a running stack",
        _create_department_arguments,
        _create_department,
    ),
    "import": Subcommand(
        "upload a CSV or XLSX of users to a department of a running stack (progress, counts)",
        lambda p: importlib.import_module("prodigy_users.stack.importer").add_arguments(p),
        lambda args: int(importlib.import_module("prodigy_users.stack.importer").run(args)),
    ),
    "contracts": Subcommand(
        "write contracts/schemas/*.json from the event models (--check: only report drift)",
        _contracts_arguments,
        _contracts,
    ),
    "asyncapi": Subcommand(
        "print (or --output) the AsyncAPI document of every topic", _asyncapi_arguments, _asyncapi
    ),
    "replay": Subcommand(
        "rebuild a read model (reporting) from the topics and switch the service over to it",
        lambda p: importlib.import_module("prodigy_users.stack.replaying").add_arguments(p),
        lambda args: int(importlib.import_module("prodigy_users.stack.replaying").run(args)),
    ),
    "dlq": Subcommand(
        "a service's dead letters: list, show one, replay chosen ones through its consumer",
        lambda p: importlib.import_module("prodigy_users.stack.dlq").add_arguments(p),
        lambda args: int(importlib.import_module("prodigy_users.stack.dlq").run(args)),
    ),
    "accounts": Subcommand(
        "operators' tools for accounts (duplicates: accounts that may be one person's; "
        "merge KEEP DROP: make them one)",
        lambda p: importlib.import_module("prodigy_users.stack.accounts").add_arguments(p),
        lambda args: int(importlib.import_module("prodigy_users.stack.accounts").run(args)),
    ),
    "deploy": Subcommand(
        "Kubernetes: KafkaTopic/KafkaUser manifests from the topic registry, or the key files",
        lambda p: importlib.import_module("prodigy_users.stack.deploy_gen").add_arguments(p),
        lambda args: int(importlib.import_module("prodigy_users.stack.deploy_gen").run(args)),
    ),
}


def parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand in ``SUBCOMMANDS``."""
    root = argparse.ArgumentParser(
        prog="prodigy-users",
        description="User management for training departments: dev stack and tools.",
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prodigy-users`` console script."""
    args = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
