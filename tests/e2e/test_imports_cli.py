"""`prodigy-users import` against the running stack: progress on stderr, counts on stdout."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.import_support import csv_file, list_imports, tag
from tests.support import Api

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "prodigy_users.stack.cli", "import"]


async def _run(stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        *CLI,
        *args,
        "--data-dir",
        str(stack.config.data_dir),
        "--membership-url",
        stack.url("membership"),
    ]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=180, check=False
    )


async def test_import_command_uploads_shows_progress_and_prints_the_counts(
    api: Api, stack: Any, tmp_path: Path
) -> None:
    if stack is None:
        pytest.skip("PRODIGY_TEST_TARGET=external: the command signs with the stack's key")
    admin = await api.create_department()
    t = tag()
    path = tmp_path / "staff.csv"
    path.write_bytes(
        csv_file(
            [
                ["Name", "Email", "Role"],
                *[[f"C {i}", f"cli{i}-{t}@example.org", "member"] for i in range(30)],
                ["Bad", "not-an-address", ""],
            ]
        )
    )

    preview = await _run(stack, "--department", admin.department_id, "--dry-run", str(path))
    assert preview.returncode == 0, preview.stderr
    assert json.loads(preview.stdout)["dry_run"] is True
    assert await api.mails(f"cli0-{t}@example.org") == []

    saved = tmp_path / "results.csv"
    done = await _run(
        stack, "--department", admin.department_id, "--results", str(saved), str(path)
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {k: summary[k] for k in ("rows", "created", "invalid", "dry_run")} == {
        "rows": 31,
        "created": 30,
        "invalid": 1,
        "dry_run": False,
    }
    assert summary["status"] == "finished"
    # The last progress line is the full bar with the counts.
    assert "[##############################] 31/31 rows  created 30  invalid 1" in done.stderr
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["line", "Name", "Email", "Role", "outcome", "reason"]
    assert len(rows) == 32 and rows[-1][-2] == "invalid"
    await api.wait_mail(f"cli29-{t}@example.org")
    newest, preview_import = await list_imports(api, admin)
    assert newest["import_id"] == summary["import_id"] and preview_import["dry_run"] is True


async def test_import_command_says_what_went_wrong(stack: Any, tmp_path: Path) -> None:
    if stack is None:
        pytest.skip("PRODIGY_TEST_TARGET=external: the command signs with the stack's key")
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    unknown = "00000000-0000-4000-8000-000000000001"
    r = await _run(stack, "--department", unknown, str(path))
    assert r.returncode == 1
    assert "membership answered 404" in r.stderr
    missing = await _run(stack, "--department", unknown, str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
