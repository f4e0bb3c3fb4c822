"""``prodigy-users import``: upload a CSV or XLSX of users to a department of a running stack.

It authenticates like ``create-department`` (a short-lived operator token signed
with identity's key, or ``--token``), uploads the file, shows a progress bar on
stderr while the rows are processed, and prints the final counts as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from .departments import (
    OperatorError,
    _call,
    _expect,
    _problem,
    operator_token,
    signing_key_path,
)

OUTCOMES = ("created", "invited", "already_member", "updated", "duplicate_in_file", "invalid")
BAR_WIDTH = 30


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's options."""
    from . import DEFAULT_DATA_DIR

    p.add_argument("file", type=Path, help="a CSV or XLSX file, header row first")
    p.add_argument("--department", required=True, help="the department's id")
    p.add_argument("--dry-run", action="store_true", help="only report the outcomes")
    p.add_argument(
        "--mode",
        choices=["add", "update"],
        default="add",
        help="update: existing members take their row's role, employee ID and groups",
    )
    p.add_argument("--results", type=Path, help="also save results.csv here")
    p.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR), help="stack data dir")
    p.add_argument("--membership-url", default="http://127.0.0.1:8102")
    p.add_argument(
        "--signing-key",
        type=Path,
        help="identity's private key (default: $PRODIGY_SIGNING_KEY_PATH, else "
        "<data-dir>/keys/signing.pem)",
    )
    p.add_argument("--token", help="an access token to use instead (e.g. a department admin's)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the end")


def progress_line(status: dict[str, Any]) -> str:
    """``[#####-----]  500/1,000 rows  created 480  invalid 20``."""
    total = int(status.get("total_rows") or 0)
    done = int(status.get("processed") or 0)
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    counts = status.get("counts") or {}
    parts = [f"{name} {counts[name]:,}" for name in OUTCOMES if counts.get(name)]
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done:,}/{total:,} rows" + (
        "  " + "  ".join(parts) if parts else ""
    )


class Progress:
    """Redraws one line on a terminal; prints a line every few seconds otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last = ""
        self._printed_at = 0.0

    def show(self, status: dict[str, Any], *, final: bool = False) -> None:
        """Show where the import stands."""
        line = progress_line(status)
        if self.tty:
            self.out.write("\r" + line.ljust(len(self._last)) + ("\n" if final else ""))
            self.out.flush()
        elif final or (line != self._last and time.monotonic() - self._printed_at > 2):
            print(line, file=self.out, flush=True)
            self._printed_at = time.monotonic()
        self._last = line


def run_import(
    client: httpx.Client,
    membership: str,
    token: str,
    *,
    department: str,
    path: Path,
    dry_run: bool,
    mode: str,
    progress: Progress,
    timeout: float,
) -> dict[str, Any]:
    """Upload, follow the progress to the end; the final status."""
    base = f"{membership.rstrip('/')}/v1/departments/{department}/imports"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OperatorError(f"cannot read {path}: {exc.strerror or exc}") from exc
    headers = {"Authorization": f"Bearer {token}"}
    try:
        answer = client.post(
            base,
            params={"mode": mode, **({"dry_run": "true"} if dry_run else {})},
            files={"file": (path.name, data, "application/octet-stream")},
            headers=headers,
        )
    except httpx.ConnectError as exc:
        raise OperatorError(
            f"cannot reach membership at {membership} ({exc}); is `prodigy-users up` running?"
        ) from exc
    if answer.status_code != 202:
        raise _problem("membership", answer)
    url = f"{membership.rstrip('/')}{answer.json()['import_url']}"
    deadline = time.monotonic() + timeout
    while True:
        status = _expect("membership", _call(client, "membership", "GET", url, token), 200)
        if status.get("status") == "finished":
            progress.show(status, final=True)
            return status
        progress.show(status)
        if time.monotonic() > deadline:
            raise OperatorError(
                f"the import {status.get('import_id')} is still running after {timeout:.0f} s; "
                f"follow it at {url}"
            )
        time.sleep(0.25)


def run(args: argparse.Namespace) -> int:
    """``prodigy-users import``: 0 once every row has its outcome."""
    try:
        token = args.token or operator_token(
            signing_key_path(args.signing_key, args.data_dir), args.data_dir
        )
        with httpx.Client(timeout=120.0) as client:
            status = run_import(
                client,
                args.membership_url,
                token,
                department=args.department,
                path=args.file,
                dry_run=args.dry_run,
                mode=args.mode,
                progress=Progress(sys.stderr),
                timeout=args.timeout,
            )
            if args.results is not None:
                url = f"{args.membership_url.rstrip('/')}{status['results_url']}"
                answer = _call(client, "membership", "GET", url, token)
                if answer.status_code != 200:
                    raise _problem("membership", answer)
                args.results.write_bytes(answer.content)
    except OperatorError as exc:
        print(f"prodigy-users import: {exc}", file=sys.stderr)
        return 1
    counts = status.get("counts") or {}
    summary = {
        "import_id": status["import_id"],
        "status": status["status"],
        "dry_run": status["dry_run"],
        "rows": status["total_rows"],
        **{name: counts.get(name, 0) for name in OUTCOMES},
        "results_url": status["results_url"],
    }
    print(json.dumps(summary, indent=2))
    return 0
