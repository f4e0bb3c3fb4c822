"""An import survives its services being killed: it finishes after the restart, with no
row lost, no account made twice, no email sent twice."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.import_support import (
    accounts_with,
    csv_file,
    import_status,
    mail_count,
    results,
    tag,
    upload,
    wait_import,
)
from tests.support import Admin, Api, wait_for

pytestmark = pytest.mark.e2e

# Two worker chunks (1,000 + 500 rows): the kill lands after the first answer, with
# the rest of the import still ahead; small enough to keep the session's history
# (replayed after every broker reset) short.
ROWS = 1500


async def _kill_mid_import(api: Api, stack: Any, service: str) -> None:
    admin = await api.create_department()
    t = tag()
    emails = [f"{service[:3]}{i:04d}-{t}@example.org" for i in range(ROWS)]
    data = csv_file([["Name", "Email"], *[[f"K {i}", e] for i, e in enumerate(emails)]])
    r = await upload(api, admin, data)
    assert r.status_code == 202, r.text
    import_id = r.json()["import_id"]

    async def some_done() -> dict[str, Any] | None:
        body = await import_status(api, admin, import_id)
        return body if body["counts"]["created"] > 0 else None

    before = await wait_for(some_done, timeout=60, interval=0.05, what="the first rows")
    await stack.stop_service(service, kill=True)
    await stack.start_service(service)
    status = await wait_import(api, admin, import_id, timeout=240)
    assert before["status"] == "running", "the kill came after the end: nothing was tested"

    assert status["counts"]["created"] == ROWS, status["counts"]
    outcomes = {row[-2] for row in (await results(api, admin, import_id))[1:]}
    assert outcomes == {"created"}
    accounts = await accounts_with(stack.database_url("identity"), emails)
    assert set(accounts.values()) == {1}
    await _every_mail_once(api, admin, emails, t)
    reported = [u for u in await api.report_users(admin) if u["email"] in set(emails)]
    assert len(reported) == ROWS


async def _every_mail_once(api: Api, admin: Admin, emails: list[str], t: str) -> None:
    async def all_mailed() -> dict[str, int] | None:
        counts = await mail_count(api, emails)
        return counts if min(counts.values()) >= 1 else None

    await wait_for(all_mailed, timeout=240, interval=1.0, what="every credentials email")
    fence = f"fence-{t}@example.org"
    assert (await api.add_member(admin, fence)).status_code in (201, 202)
    await api.wait_mail(fence, timeout=120)
    counts = await mail_count(api, emails)
    assert set(counts.values()) == {1}, [e for e, n in counts.items() if n != 1][:5]
    await api.wait_reported(admin, fence, timeout=120)


async def test_membership_killed_mid_import_finishes_after_restart(
    api: Api, controllable: Any
) -> None:
    await _kill_mid_import(api, controllable, "membership")


async def test_identity_killed_mid_import_finishes_after_restart(
    api: Api, controllable: Any
) -> None:
    await _kill_mid_import(api, controllable, "identity")
