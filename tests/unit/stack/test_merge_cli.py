"""``prodigy-users accounts merge KEEP DROP`` beside ``accounts duplicates``: its arguments."""

from __future__ import annotations

import uuid

import pytest

from prodigy_users.stack.cli import parser

KEEP, DROP = str(uuid.uuid4()), str(uuid.uuid4())


def test_merge_takes_two_account_ids_under_accounts() -> None:
    args = parser().parse_args(["accounts", "merge", KEEP, DROP, "--identity-url", "http://x:1"])
    assert (args.action, args.keep, args.drop) == ("merge", uuid.UUID(KEEP), uuid.UUID(DROP))
    assert args.identity_url == "http://x:1"


def test_duplicates_is_still_there() -> None:
    args = parser().parse_args(["accounts", "duplicates", "--json"])
    assert (args.action, args.json) == ("duplicates", True)


@pytest.mark.parametrize("argv", [["accounts", "merge", KEEP], ["accounts", "merge", KEEP, "x"]])
def test_merge_refuses_a_missing_or_malformed_id(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(argv)
