"""The contracts are a product: committed schemas, compatibility, registry rules, AsyncAPI."""

from __future__ import annotations

import json
import re
import typing
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import pytest
from pydantic import BaseModel, Field, ValidationError

from prodigy_users.contracts import identity, membership, notifications, training
from prodigy_users.contracts.asyncapi import (
    asyncapi_document,
    main_asyncapi,
    write_asyncapi,
)
from prodigy_users.contracts.compat import breaking_changes
from prodigy_users.contracts.email import READING
from prodigy_users.contracts.envelope import Envelope, EnvelopeBase, Payload, RawEnvelope, wrap
from prodigy_users.contracts.schema_export import (
    INDEX,
    REGENERATE,
    SCHEMA_DIR,
    check_exported,
    envelope_schema,
    export_schemas,
    file_name,
    main_export,
    parse_file_name,
)
from prodigy_users.contracts.topics import EXTERNAL_OWNERS, PAYLOADS, TOPICS, topic_of

SERVICES = {"identity", "membership", "notifications", "reporting"}
# Topic namespaces and owners: our services, or a producer outside the system.
OWNERS = SERVICES | set(EXTERNAL_OWNERS)
TOPIC_NAME = re.compile(r"^(?P<owner>[a-z]+)\.[a-z]+(?:_[a-z]+)*\.v(?P<major>[1-9][0-9]*)$")
TYPE_NAME = re.compile(r"^(?P<owner>[a-z]+)\.[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")

DEPT = uuid.uuid4()
ACCOUNT = uuid.uuid4()
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
INVITATION = uuid.uuid4()
GROUP = uuid.uuid4()

# One valid payload per type; a new payload type must add its sample here.
SAMPLES: dict[str, Payload] = {
    "identity.create_account": identity.CreateAccount(
        request_id=uuid.uuid4(), email="ana.lima@example.org", name="Ana Lima", department_id=DEPT
    ),
    "identity.account_created": identity.AccountCreated(
        account_id=ACCOUNT, email="ana.lima@example.org", name="Ana Lima", department_id=DEPT
    ),
    "identity.account_creation_rejected": identity.AccountCreationRejected(
        request_id=uuid.uuid4(),
        email="ana.lima@example.org",
        reason="account_exists",
        department_id=DEPT,
    ),
    "identity.password_changed": identity.PasswordChanged(account_id=ACCOUNT, changed_at=NOW),
    "identity.tokens_revoked": identity.TokensRevoked(
        account_id=ACCOUNT, not_before=NOW, reason="signed_out_everywhere"
    ),
    "identity.password_link_issued": identity.PasswordLinkIssued(
        account_id=ACCOUNT,
        email="ana.lima@example.org",
        name="Ana Lima",
        purpose="welcome",
        sealed_token="c2VhbGVk",
        expires_at=NOW + timedelta(days=3),
    ),
    "identity.password_links_issued": identity.PasswordLinksIssued(
        request_id=uuid.UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
        department_id=DEPT,
        purpose="welcome",
        expires_at=NOW + timedelta(days=3),
        links=[
            identity.PasswordLink(
                account_id=ACCOUNT, email="ana.lima@example.org", name="Ana Lima", sealed_token="x"
            )
        ],
    ),
    "identity.account_awaiting_confirmation": identity.AccountAwaitingConfirmation(
        request_id=uuid.uuid4(),
        email="ana.lima@example.org",
        department_id=DEPT,
        expires_at=NOW + timedelta(days=1),
    ),
    "identity.account_request_lapsed": identity.AccountRequestLapsed(
        request_id=uuid.uuid4(), email="ana.lima@example.org", department_id=DEPT, reason="expired"
    ),
    "identity.account_email_confirmed": identity.AccountEmailConfirmed(
        account_id=ACCOUNT, email="ana.lima@example.org", confirmed_at=NOW, department_id=DEPT
    ),
    "identity.email_confirmation_issued": identity.EmailConfirmationIssued(
        account_id=ACCOUNT,
        email="ana.lima@example.org",
        name="Ana Lima",
        sealed_token="c2VhbGVk",
        expires_at=NOW + timedelta(days=1),
        department_id=DEPT,
    ),
    "identity.account_updated": identity.AccountUpdated(
        account_id=ACCOUNT,
        name=identity.Change(old="Ana Lyma", new="Ana Lima"),
        email=identity.Change(old="ana@old.example.org", new="ana.lima@example.org"),
        changed_by=ACCOUNT,
        occurred_at=NOW,
    ),
    "identity.rename_account": identity.RenameAccount(
        account_id=ACCOUNT,
        name="Ana Lima",
        changed_by=uuid.UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
        department_id=DEPT,
    ),
    "identity.link_address": identity.LinkAddress(
        account_id=ACCOUNT,
        email="tina.work@example.org",
        department_id=DEPT,
        invitation_id=uuid.UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
    ),
    "identity.address_linked": identity.AddressLinked(
        account_id=ACCOUNT,
        address_id=uuid.UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
        via="invitation",
        linked_at=NOW,
    ),
    "identity.address_unlinked": identity.AddressUnlinked(
        account_id=ACCOUNT,
        address_id=uuid.UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
        unlinked_at=NOW,
    ),
    "identity.account_merged": identity.AccountMerged(
        kept_account_id=ACCOUNT,
        merged_account_id=uuid.UUID("7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"),
        merged_at=NOW,
    ),
    "identity.account_address_changed": identity.AccountAddressChanged(
        account_id=ACCOUNT, email="tina.work@example.org", change="linked", occurred_at=NOW
    ),
    "identity.address_confirmation_issued": identity.AddressConfirmationIssued(
        account_id=ACCOUNT,
        email="tina.work@example.org",
        name="Tina Cruz",
        sealed_token="c2VhbGVk",
        expires_at=NOW,
    ),
    "identity.email_change_confirmation_issued": identity.EmailChangeConfirmationIssued(
        account_id=ACCOUNT,
        email="ana.lima@example.org",
        name="Ana Lima",
        sealed_token="c2VhbGVk",
        expires_at=NOW + timedelta(days=1),
    ),
    "membership.department_created": membership.DepartmentCreated(
        department_id=DEPT, name="Springfield EMS"
    ),
    "membership.member_added": membership.MemberAdded(
        department_id=DEPT,
        account_id=ACCOUNT,
        name="Ana Lima",
        email="ana.lima@example.org",
        role="officer",
        employee_id="E-17",
        joined_at=NOW,
        via="invitation",
    ),
    "identity.issue_password_reset": identity.IssuePasswordReset(
        account_id=ACCOUNT, department_id=DEPT
    ),
    "identity.password_reset_requested": identity.PasswordResetRequested(
        email="ana.lima@example.org"
    ),
    "identity.create_accounts": identity.CreateAccounts(
        request_id=uuid.uuid4(),
        department_id=DEPT,
        accounts=[identity.AccountRequest(email="ana.lima@example.org", name="Ana Lima")],
    ),
    "identity.account_batch_answered": identity.AccountBatchAnswered(
        request_id=uuid.uuid4(),
        department_id=DEPT,
        created=[identity.BatchAccount(email="ana.lima@example.org", account_id=ACCOUNT)],
        existing=[],
    ),
    "membership.member_invited": membership.MemberInvited(
        department_id=DEPT,
        invitation_id=INVITATION,
        email="new@example.org",
        role="member",
        expires_at=NOW + timedelta(days=14),
        invited_by=ACCOUNT,
    ),
    "membership.invitation_reminded": membership.InvitationReminded(
        department_id=DEPT, invitation_id=INVITATION, email="new@example.org"
    ),
    "membership.invitation_revoked": membership.InvitationRevoked(
        department_id=DEPT, invitation_id=INVITATION, email="new@example.org"
    ),
    "membership.invitation_expired": membership.InvitationExpired(
        department_id=DEPT, invitation_id=INVITATION, email="new@example.org"
    ),
    "membership.invitation_accepted": membership.InvitationAccepted(
        department_id=DEPT, invitation_id=INVITATION, account_id=ACCOUNT, email="new@example.org"
    ),
    "membership.member_role_changed": membership.MemberRoleChanged(
        department_id=DEPT, account_id=ACCOUNT, role="admin", previous_role="member"
    ),
    "membership.member_status_changed": membership.MemberStatusChanged(
        department_id=DEPT, account_id=ACCOUNT, status="inactive"
    ),
    "membership.employee_id_set": membership.EmployeeIdSet(
        department_id=DEPT, account_id=ACCOUNT, employee_id="E-17"
    ),
    "membership.group_created": membership.GroupCreated(
        department_id=DEPT, group_id=GROUP, name="Night shift"
    ),
    "membership.group_renamed": membership.GroupRenamed(
        department_id=DEPT, group_id=GROUP, name="Day shift"
    ),
    "membership.group_deleted": membership.GroupDeleted(department_id=DEPT, group_id=GROUP),
    "membership.member_joined_group": membership.MemberJoinedGroup(
        department_id=DEPT, group_id=GROUP, account_id=ACCOUNT
    ),
    "membership.member_left_group": membership.MemberLeftGroup(
        department_id=DEPT, group_id=GROUP, account_id=ACCOUNT
    ),
    "membership.member_removed": membership.MemberRemoved(department_id=DEPT, account_id=ACCOUNT),
    "membership.member_restored": membership.MemberRestored(
        department_id=DEPT,
        account_id=ACCOUNT,
        name="Ana Lima",
        email="ana.lima@example.org",
        role="member",
        status="active",
        employee_id="E-17",
        group_ids=[GROUP],
        restored_at=NOW,
    ),
    "membership.member_merged": membership.MemberMerged(
        department_id=DEPT,
        account_id=ACCOUNT,
        merged_account_id=uuid.UUID("7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"),
        name="Ana Lima",
        email="ana.lima@example.org",
        role="member",
        status="active",
        employee_id="E-17",
        group_ids=[GROUP],
        joined_at=NOW,
        merged_at=NOW,
    ),
    "membership.registration_link_changed": membership.RegistrationLinkChanged(
        department_id=DEPT, enabled=True, role="member", allowed_domains=["example.org"]
    ),
    "membership.invitation_link_issued": membership.InvitationLinkIssued(
        department_id=DEPT,
        invitation_id=INVITATION,
        email="new@example.org",
        role="member",
        sealed_token="c2VhbGVk",
        expires_at=NOW + timedelta(days=14),
    ),
    "membership.welcome_requested": membership.WelcomeRequested(
        department_id=DEPT, account_id=ACCOUNT, email="ana.lima@example.org", name="Ana Lima"
    ),
    "membership.sign_in_to_join_requested": membership.SignInToJoinRequested(
        department_id=DEPT,
        email="ana.lima@example.org",
        via="registration_link",
        sealed_token="c2VhbGVk",
    ),
    "membership.import_started": membership.ImportStarted(
        department_id=DEPT, import_id=uuid.uuid4(), rows=3, mode="add", file_name="staff.csv"
    ),
    "membership.import_finished": membership.ImportFinished(
        department_id=DEPT,
        import_id=uuid.uuid4(),
        rows=3,
        created=1,
        invited=1,
        already_member=0,
        updated=0,
        duplicate_in_file=0,
        invalid=1,
        finished_at=NOW,
    ),
    "notifications.email_sent": notifications.EmailSent(
        email_id=uuid.uuid4(),
        template="welcome",
        to="ana.lima@example.org",
        department_id=DEPT,
        source_event_id=uuid.uuid4(),
        sent_at=NOW,
        attempts=1,
    ),
    "notifications.email_failed": notifications.EmailFailed(
        email_id=uuid.uuid4(),
        template="welcome",
        to="ana.lima@example.org",
        source_event_id=uuid.uuid4(),
        error="550 mailbox unavailable",
        attempts=5,
    ),
    "notifications.email_dead_lettered": notifications.EmailDeadLettered(
        email_id=uuid.uuid4(),
        template="welcome",
        to="ana.lima@example.org",
        department_id=DEPT,
        account_id=ACCOUNT,
        source_event_id=uuid.uuid4(),
        reason="recipient refused: ana.lima@example.org: 550 5.1.1 Mailbox unavailable",
        permanent=True,
        attempts=1,
        queued_at=NOW,
        last_attempt_at=NOW,
    ),
    "training.course_assigned": training.CourseAssigned(
        department_id=DEPT,
        account_id=ACCOUNT,
        course_id="ems-cpr-2026",
        title="CPR and AED",
        plan="2026 recertification",
        due_on=date(2026, 12, 31),
        assigned_at=NOW,
    ),
    "training.course_completed": training.CourseCompleted(
        department_id=DEPT,
        account_id=ACCOUNT,
        course_id="ems-cpr-2026",
        title="CPR and AED",
        completed_on=date(2026, 11, 20),
        hours=4.5,
        credits=0.5,
        certificate_id="cert-2026-000417",
    ),
    "training.certificate_revoked": training.CertificateRevoked(
        department_id=DEPT,
        account_id=ACCOUNT,
        certificate_id="cert-2026-000417",
        reason="Issued in error",
        revoked_at=NOW,
    ),
}


def committed_schemas() -> list[Path]:
    return sorted(p for p in SCHEMA_DIR.glob("*.json") if p.name != INDEX)


# --- (a) committed schemas are what the models generate ------------------------------------


def test_committed_schemas_match_the_models() -> None:
    problems = check_exported()
    assert not problems, (
        "The committed JSON Schemas in contracts/schemas are out of date:\n  "
        + "\n  ".join(problems)
        + f"\nRun `{REGENERATE}` (or `python -m prodigy_users.contracts.schema_export`) "
        "and commit the result."
    )


def test_every_committed_schema_is_a_valid_json_schema() -> None:
    assert committed_schemas()
    for path in committed_schemas():
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_export_writes_sorted_pretty_files_and_an_index(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)
    names = {p.name for p in written}
    assert names == {file_name(p) for p in PAYLOADS.values()} | {INDEX}
    assert "membership.member_added.v1.json" in names
    for path in written:
        text = path.read_text()
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    index = json.loads((tmp_path / INDEX).read_text())
    by_name = {t["name"]: t for t in index["topics"]}
    assert list(by_name) == [t.name for t in TOPICS]
    events = by_name["membership.events.v1"]
    assert events["key"] == "department_id"
    assert events["partitions"] == 6
    assert events["retention_ms"] == -1
    assert events["cleanup_policy"] == "delete"
    assert events["private"] is False
    assert {t["type"] for t in events["types"]} == {
        p.TYPE for p in topic_of(membership.MemberAdded).payloads
    }
    assert {"membership.department_created", "membership.member_added"} <= {
        t["type"] for t in events["types"]
    }
    assert by_name["identity.credentials.v1"]["private"] is True


def test_check_exported_reports_every_kind_of_drift(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    assert check_exported(tmp_path) == []

    (tmp_path / "membership.member_added.v1.json").write_text("{}\n")
    (tmp_path / "identity.password_changed.v1.json").unlink()
    (tmp_path / "membership.member_moved.v1.json").write_text("{}\n")  # no model any more
    (tmp_path / "membership.department_created.v9.json").write_text("{}\n")  # ahead of model
    problems = check_exported(tmp_path)
    assert problems == [
        "identity.password_changed.v1.json: missing",
        "membership.member_added.v1.json: differs from what the models generate",
        "membership.department_created.v9.json: ahead of the model's version 1",
        "membership.member_moved.v1.json: no payload model has the type "
        "'membership.member_moved' any more",
    ]


def test_older_versions_are_kept_as_the_baseline(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    (tmp_path / "membership.member_added.v0.json").write_text("{}\n")
    assert check_exported(tmp_path) == []


def test_main_export_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_export(tmp_path, check=True) == 1
    assert REGENERATE in capsys.readouterr().err
    assert main_export(tmp_path) == 0
    assert main_export(tmp_path, check=True) == 0


def test_contracts_export_command(tmp_path: Path) -> None:
    from prodigy_users.stack.cli import main

    assert main(["contracts", "export", "--dir", str(tmp_path)]) == 0
    assert check_exported(tmp_path) == []
    assert main(["contracts", "export", "--dir", str(tmp_path), "--check"]) == 0


def test_parse_file_name() -> None:
    assert parse_file_name("membership.member_added.v12.json") == ("membership.member_added", 12)
    assert parse_file_name(INDEX) is None
    assert parse_file_name("README.md") is None


# --- (b) the current models do not break the committed schemas ------------------------------


@pytest.mark.parametrize("path", committed_schemas(), ids=lambda p: p.name)
def test_current_model_is_backward_compatible(path: Path) -> None:
    type_, _version = parse_file_name(path.name) or ("?", 0)
    model = PAYLOADS.get(type_)
    assert model is not None, (
        f"{path.name} is committed but no payload model has the type {type_!r}: removing an "
        "event type breaks subscribers. Keep it, or publish a new `.v2` topic side by side."
    )
    problems = breaking_changes(json.loads(path.read_text()), envelope_schema(model))
    assert not problems, (
        f"{model.__name__} breaks the committed contract {path.name}:\n  "
        + "\n  ".join(problems)
        + "\nOnly optional fields and new enum values may be added within a topic's major "
        "version; a breaking change needs a new `.v2` topic run side by side (docs/events.md)."
    )


def test_a_real_incompatible_model_change_is_caught() -> None:
    committed = json.loads((SCHEMA_DIR / "membership.member_added.v1.json").read_text())

    class NarrowedMemberAdded(membership.MemberAdded):
        """MemberAdded with the `officer` role dropped and a new required field."""

        TYPE: ClassVar[str] = "membership.member_added"
        role: Literal["admin", "member"] = Field(description="Role.")
        team: str = Field(description="A new required field.")

    problems = breaking_changes(committed, envelope_schema(NarrowedMemberAdded))
    assert problems == [
        "data.role: enum values removed: officer",
        "data.team: new required property",
    ]


def test_adding_an_optional_field_to_a_real_model_is_compatible() -> None:
    committed = json.loads((SCHEMA_DIR / "membership.member_added.v1.json").read_text())

    class WiderMemberAdded(membership.MemberAdded):
        """MemberAdded with one more optional field."""

        TYPE: ClassVar[str] = "membership.member_added"
        team: str | None = Field(default=None, description="Optional team.")

    assert breaking_changes(committed, envelope_schema(WiderMemberAdded)) == []


# --- (c) the compatibility rules, one by one ---------------------------------------------------


def obj(required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    """A small object schema."""
    return {"type": "object", "properties": props, "required": list(required)}


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NULLABLE_STR: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_identical_schemas_are_compatible() -> None:
    schema = envelope_schema(membership.MemberAdded)
    assert breaking_changes(schema, schema) == []


def test_removing_a_property_breaks() -> None:
    old = obj(a=STR, b=STR)
    assert breaking_changes(old, obj(a=STR)) == ["b: property removed"]


def test_adding_an_optional_property_is_fine() -> None:
    assert breaking_changes(obj(a=STR), obj(a=STR, b=NULLABLE_STR)) == []


def test_adding_a_required_property_breaks() -> None:
    assert breaking_changes(obj(a=STR), obj(("b",), a=STR, b=STR)) == ["b: new required property"]


def test_making_an_optional_property_required_breaks() -> None:
    assert breaking_changes(obj(a=STR), obj(("a",), a=STR)) == [
        "a: optional property became required"
    ]


def test_making_a_required_property_optional_breaks() -> None:
    # Old subscribers validate it as required: events without it would be dead-lettered.
    assert breaking_changes(obj(("a",), a=STR), obj(a=STR)) == [
        "a: required property became optional"
    ]


def test_keeping_required_properties_required_is_fine() -> None:
    assert breaking_changes(obj(("a",), a=STR), obj(("a",), a=STR)) == []


def test_changing_a_type_breaks() -> None:
    assert breaking_changes(obj(a=STR), obj(a=INT)) == ["a: type changed from string to integer"]


def test_making_a_property_nullable_changes_its_type() -> None:
    assert breaking_changes(obj(a=STR), obj(a=NULLABLE_STR)) == [
        "a: type changed from string to null, string"
    ]


def test_same_type_written_differently_is_fine() -> None:
    old = obj(a={"type": ["string", "null"]})
    assert breaking_changes(old, obj(a=NULLABLE_STR)) == []


def test_narrowing_an_enum_breaks() -> None:
    old = obj(a={"type": "string", "enum": ["x", "y", "z"]})
    new = obj(a={"type": "string", "enum": ["x"]})
    assert breaking_changes(old, new) == ["a: enum values removed: y, z"]


def test_widening_an_enum_is_fine() -> None:
    old = obj(a={"type": "string", "const": "x"})  # how pydantic writes Literal["x"]
    new = obj(a={"type": "string", "enum": ["x", "y"]})
    assert breaking_changes(old, new) == []


def test_restricting_a_free_value_to_an_enum_breaks() -> None:
    new = obj(a={"type": "string", "enum": ["x"]})
    assert breaking_changes(obj(a=STR), new) == ["a: restricted to the values x"]


def test_lifting_an_enum_to_a_free_value_is_fine() -> None:
    old = obj(a={"type": "string", "enum": ["x"]})
    assert breaking_changes(old, obj(a=STR)) == []


def test_nullable_enum_narrowed_breaks() -> None:
    old = obj(a={"anyOf": [{"type": "string", "enum": ["x", "y"]}, {"type": "null"}]})
    new = obj(a={"anyOf": [{"type": "string", "enum": ["x"]}, {"type": "null"}]})
    assert breaking_changes(old, new) == ["a: enum values removed: y"]


def test_changing_a_format_breaks() -> None:
    old = obj(a={"type": "string", "format": "uuid"})
    assert breaking_changes(old, obj(a={"type": "string", "format": "email"})) == [
        "a: format changed from uuid to email"
    ]
    assert breaking_changes(old, obj(a=STR)) == ["a: format changed from uuid to none"]
    assert breaking_changes(obj(a=STR), old) == ["a: format changed from none to uuid"]


def test_keeping_a_format_is_fine() -> None:
    old = obj(a={"type": "string", "format": "date-time", "description": "old words"})
    new = obj(a={"type": "string", "format": "date-time", "description": "new words"})
    assert breaking_changes(old, new) == []


def test_refs_are_resolved_on_both_sides() -> None:
    old = {
        "$defs": {"Inner": obj(("x",), x=STR)},
        "type": "object",
        "properties": {"data": {"$ref": "#/$defs/Inner", "description": "d"}},
        "required": ["data"],
    }
    renamed = {
        "$defs": {"Renamed": obj(("x",), x=STR)},
        "type": "object",
        "properties": {"data": {"$ref": "#/$defs/Renamed"}},
        "required": ["data"],
    }
    changed = {
        "$defs": {"Inner": obj(("x",), x=INT)},
        "type": "object",
        "properties": {"data": {"$ref": "#/$defs/Inner"}},
        "required": ["data"],
    }
    assert breaking_changes(old, renamed) == []
    assert breaking_changes(old, changed) == ["data.x: type changed from string to integer"]


def test_optional_nested_models_are_compared_inside() -> None:
    def schema(inner: dict[str, Any]) -> dict[str, Any]:
        return {
            "$defs": {"Inner": inner},
            "type": "object",
            "properties": {"data": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}]}},
        }

    old = schema(obj(a=STR, b=STR))
    assert breaking_changes(old, schema(obj(a=STR))) == ["data.b: property removed"]


def test_array_items_are_compared() -> None:
    old = obj(tags={"type": "array", "items": STR})
    new = obj(tags={"type": "array", "items": INT})
    assert breaking_changes(old, new) == ["tags[]: type changed from string to integer"]


def test_remote_refs_are_refused() -> None:
    with pytest.raises(ValueError, match="local"):
        breaking_changes(obj(a={"$ref": "other.json#/x"}), obj(a=STR))


# --- (d) registry sanity ----------------------------------------------------------------------


def all_payloads() -> list[type[Payload]]:
    return [p for t in TOPICS for p in t.payloads]


def test_every_payload_is_on_exactly_one_topic() -> None:
    payloads = all_payloads()
    for payload in set(payloads):
        topics = [t.name for t in TOPICS if payload in t.payloads]
        assert len(topics) == 1, f"{payload.__name__} is on {topics}"
        assert topic_of(payload).name == topics[0]


def test_type_names_are_unique() -> None:
    assert len(PAYLOADS) == len(all_payloads()), "two payload models share a TYPE"


def test_topic_names_carry_a_major_version() -> None:
    names = [t.name for t in TOPICS]
    assert len(set(names)) == len(names)
    for topic in TOPICS:
        match = TOPIC_NAME.match(topic.name)
        assert match, f"{topic.name} is not <service>.<name>.v<major>"
        assert match["owner"] in OWNERS
        assert topic.dlq == f"{topic.name}.dlq"
        assert topic.owner in OWNERS
        assert topic.owner == match["owner"] or topic.owner in SERVICES
        assert set(topic.consumers) <= SERVICES
        assert topic.partitions >= 1


def test_type_names_are_owner_dot_snake_case() -> None:
    for payload in all_payloads():
        match = TYPE_NAME.match(payload.TYPE)
        assert match, f"{payload.TYPE} is not <owner>.<snake_case>"
        # The prefix names the service whose namespace the topic is (commands to
        # identity are `identity.*` even though membership writes them).
        assert match["owner"] == topic_of(payload).name.split(".")[0], payload.TYPE
        assert payload.VERSION >= 1


def test_credentials_topic_is_private() -> None:
    private = {t.name for t in TOPICS if t.private}
    assert private == {
        "identity.credentials.v1",
        "membership.mail.v1",
        # Identity's own queue: who asked for a reset of which address.
        "identity.reset_requests.v1",
        # Commands to identity: registrations' (sealed) password hashes.
        "identity.commands.v1",
        # Answers that map an address to the account that holds it.
        "identity.answers.v1",
        "identity.account_batches.v1",
    }


# Fields that hold a secret, or say which account holds an address: never on a topic
# another team may read.
_SECRET_FIELDS = re.compile(r"sealed|password_hash|token|existing", re.IGNORECASE)


def _field_names(model: type[BaseModel]) -> set[str]:
    names = set(model.model_fields)
    for info in model.model_fields.values():
        for arg in typing.get_args(info.annotation) or (info.annotation,):
            inner = typing.get_args(arg) or (arg,)
            for candidate in inner:
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    names |= _field_names(candidate)
    return names


def test_secrets_and_account_lookups_travel_only_on_private_topics() -> None:
    for topic in TOPICS:
        for payload in topic.payloads:
            secret = {name for name in _field_names(payload) if _SECRET_FIELDS.search(name)}
            if secret:
                assert topic.private, f"{payload.TYPE} on {topic.name} carries {secret}"
    # The catch itself works: the sealed tokens and the rejection's account are found.
    assert "sealed_token" in _field_names(identity.PasswordLinksIssued)
    assert "existing_account_id" in _field_names(identity.AccountCreationRejected)
    assert "sealed_password_hash" in _field_names(identity.CreateAccount)


def test_training_topic_is_external_kept_forever_and_keyed_by_person() -> None:
    from prodigy_users.contracts.topics import UNLIMITED, produced_by

    topic = topic_of(training.CourseCompleted)
    assert topic.name == "training.events.v1"
    assert topic.owner in EXTERNAL_OWNERS and not topic.private
    # Reporting's replay rebuilds transcripts from it: nothing may expire.
    assert topic.retention_ms == UNLIMITED and topic.cleanup_policy == "delete"
    assert topic.key == "account_id" and topic.consumers == ("reporting",)
    assert all(topic not in produced_by(service) for service in SERVICES)


@pytest.mark.parametrize(
    "model", [*all_payloads(), Envelope, RawEnvelope], ids=lambda m: m.__name__
)
def test_models_and_fields_are_described(model: type[EnvelopeBase | Payload]) -> None:
    assert model.__doc__ and model.__doc__.strip(), f"{model.__name__} has no docstring"
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name} has no description"


def test_payload_schemas_carry_the_docstring() -> None:
    for payload in all_payloads():
        schema = envelope_schema(payload)
        assert schema["$defs"][payload.__name__]["description"].strip()


# --- (e) envelope round trip ------------------------------------------------------------------


def test_every_payload_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(PAYLOADS)
    for type_, sample in SAMPLES.items():
        assert type_ == type(sample).TYPE


@pytest.mark.parametrize("type_", sorted(SAMPLES))
def test_envelope_round_trip(type_: str) -> None:
    payload = SAMPLES[type_]
    envelope = wrap(payload, producer="membership", key=str(DEPT), correlation_id="req-1")
    wire = envelope.encode()

    committed = json.loads((SCHEMA_DIR / file_name(type(payload))).read_text())
    jsonschema.validate(json.loads(wire), committed, format_checker=jsonschema.FormatChecker())

    raw = RawEnvelope.model_validate_json(wire)
    assert (raw.event_id, raw.type) == (envelope.event_id, type_)
    assert raw.version == type(payload).VERSION
    assert (raw.producer, raw.key, raw.correlation_id) == ("membership", str(DEPT), "req-1")
    assert raw.causation_id is None
    assert raw.occurred_at == envelope.occurred_at
    assert PAYLOADS[raw.type].model_validate(raw.data) == payload


def test_an_older_model_reads_a_newer_payload() -> None:
    # A newer producer may add optional fields; today's models must accept them.
    data = {**SAMPLES["membership.member_added"].model_dump(mode="json"), "team": "night"}
    parsed = membership.MemberAdded.model_validate(data)
    assert parsed.account_id == ACCOUNT


def test_every_envelope_gets_a_fresh_event_id() -> None:
    payload = SAMPLES["membership.department_created"]
    first = wrap(payload, producer="membership", key=str(DEPT))
    second = wrap(payload, producer="membership", key=str(DEPT))
    assert first.event_id != second.event_id


# --- AsyncAPI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def test_asyncapi_names_every_topic(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {t.name for t in TOPICS}
    for topic in TOPICS:
        assert document["operations"][topic.name]["action"] == "send"
        assert topic.description in document["channels"][topic.name]["description"]
        for service in topic.consumers:
            operation = document["operations"][f"{service}:{topic.name}"]
            assert operation["action"] == "receive"


def test_asyncapi_names_every_payload_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for payload in PAYLOADS.values():
        assert payload.__name__ in schemas, payload.TYPE
        envelope = schemas[f"{payload.__name__}Envelope"]
        assert envelope["properties"]["data"]["$ref"].endswith(f"/{payload.__name__}")
        assert payload.TYPE in envelope["description"]


def test_asyncapi_publishers_carry_their_topics_envelopes(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    for topic in TOPICS:
        message = document["components"]["messages"][f"{topic.name}:Message"]
        payload_ref = json.dumps(message["payload"])
        if len(topic.payloads) == 1:
            assert f"{topic.payloads[0].__name__}Envelope" in payload_ref
        else:
            union = document["components"]["schemas"][f"{topic.name}:Message:Payload"]
            refs = {branch["$ref"].rsplit("/", 1)[1] for branch in union["anyOf"]}
            assert refs == {f"{p.__name__}Envelope" for p in topic.payloads}
    assert "try it out" not in text.lower()


def test_write_asyncapi(tmp_path: Path, document: dict[str, Any]) -> None:
    path = write_asyncapi(tmp_path / "out" / "asyncapi.json")
    assert json.loads(path.read_text()) == document


def test_main_asyncapi_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_asyncapi() == 0
    assert json.loads(capsys.readouterr().out)["info"]["title"]


def test_asyncapi_command_writes_the_output_file(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.json"
    from prodigy_users.stack.cli import main

    assert main(["asyncapi", "--output", str(target)]) == 0
    assert json.loads(target.read_text())["asyncapi"] == "3.0.0"


# --- the email type ----------------------------------------------------------------------------


def _added(email: str) -> dict[str, Any]:
    return {
        "department_id": str(uuid.uuid4()),
        "account_id": str(uuid.uuid4()),
        "email": email,
        "name": "Ana Lima",
        "role": "member",
        "joined_at": "2026-11-26T08:00:00Z",
    }


def test_event_emails_are_checked_and_normalized_as_emailstr_does() -> None:
    event = membership.MemberAdded.model_validate(_added("  Ana.Lima@EXAMPLE.org "))
    assert event.email == "Ana.Lima@example.org"
    assert membership.MemberAdded.model_json_schema()["properties"]["email"]["format"] == "email"


@pytest.mark.parametrize("bad", ["not-an-email", "ana@", "ana lima@example.org", "a@b\r\nc.org"])
def test_a_bad_email_in_an_event_fails_with_the_reason(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        membership.MemberAdded.model_validate(_added(bad))
    (error,) = caught.value.errors()
    assert error["loc"] == ("email",)
    assert error["msg"].startswith("value is not a valid email address: ")


@pytest.mark.parametrize(
    "address", ["ana@example.test", "Ana.Lima@EXAMPLE.org", "ñandú@ejemplo.es"]
)
def test_a_consumer_checks_an_events_email_for_its_shape_only(address: str) -> None:
    """The owner checked it in full; a consumer must not reject (dead-letter) a good
    event because its own email-validator disagrees, nor spend 0.1 ms on each."""
    event = membership.MemberAdded.model_validate(_added(address), context=READING)
    assert event.email == address  # as produced: not normalized again


@pytest.mark.parametrize(
    "garbage", ["not-an-email", "ana@", "@example.org", "a b@example.org", "a@b@c.org", "a@b\nc"]
)
def test_a_consumer_still_rejects_what_is_no_address(garbage: str) -> None:
    with pytest.raises(ValidationError) as caught:
        membership.MemberAdded.model_validate(_added(garbage), context=READING)
    (error,) = caught.value.errors()
    assert error["loc"] == ("email",)
    assert "not a valid email address" in error["msg"]


def test_a_consumer_rejects_an_overlong_address() -> None:
    with pytest.raises(ValidationError):
        membership.MemberAdded.model_validate(_added("a" * 250 + "@x.org"), context=READING)
