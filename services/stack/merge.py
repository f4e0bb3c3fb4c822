"""``prodigy-users accounts merge KEEP DROP``: one person's two accounts become one.

Signs a short-lived operator token with identity's private key (as
``create-department`` does) and asks identity to merge DROP into KEEP
(``POST /v1/accounts/{KEEP}/merges``). Identity moves DROP's addresses and stops it
signing in, in one transaction; membership and reporting then move its memberships
and training records from ``identity.account_merged`` (within seconds). Running it
again for the same pair answers the same and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from . import DEFAULT_DATA_DIR


def add_parser(actions: Any) -> None:
    """The ``merge`` action of ``accounts``."""
    merge = actions.add_parser(
        "merge",
        help="merge account DROP into account KEEP (one person's two accounts): its "
        "addresses, memberships and training records become KEEP's; DROP no longer signs in",
    )
    merge.add_argument("keep", type=uuid.UUID, help="id of the account that stays")
    merge.add_argument("drop", type=uuid.UUID, help="id of the account merged into it")
    merge.add_argument(
        "--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR), help="the stack's data dir"
    )
    merge.add_argument("--identity-url", default="http://127.0.0.1:8101")
    merge.add_argument(
        "--signing-key",
        type=Path,
        help="identity's private key (default: $PRODIGY_SIGNING_KEY_PATH, else "
        "<data-dir>/keys/signing.pem)",
    )


def merge_accounts(
    identity_url: str, token: str, keep: uuid.UUID, drop: uuid.UUID
) -> dict[str, Any]:
    """Ask identity for the merge; its answer (``OperatorError`` on a refusal)."""
    import httpx

    from .departments import _call, _expect

    url = f"{identity_url.rstrip('/')}/v1/accounts/{keep}/merges"
    with httpx.Client(timeout=30.0) as client:
        answer = _call(client, "identity", "POST", url, token, {"account_id": str(drop)})
    return _expect("identity", answer, 200)


def run(args: argparse.Namespace) -> int:
    """Print identity's answer as JSON; 1 (and the problem on stderr) on a refusal."""
    from .departments import OperatorError, operator_token, signing_key_path

    try:
        token = operator_token(signing_key_path(args.signing_key, args.data_dir), args.data_dir)
        out = merge_accounts(args.identity_url, token, args.keep, args.drop)
    except OperatorError as exc:
        print(f"prodigy-users accounts merge: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0
