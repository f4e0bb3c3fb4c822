"""What a form shows after a service said no: GOV.UK-style errors.

A summary at the top links to each field at fault; each field shows its own
message; a problem that concerns no field is shown as a sentence about the
action. Messages are the services' own, made into sentences (no raw JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .clients import Problem


@dataclass(frozen=True)
class ErrorItem:
    """One line of the error summary; ``field`` is the id of the input it links to."""

    message: str
    field: str | None = None


@dataclass
class FormErrors:
    """Errors of one form: by field (input id -> message) and the summary's lines."""

    fields: dict[str, str] = field(default_factory=dict)
    summary: list[ErrorItem] = field(default_factory=list)
    # An address whose registration waits for its confirmation: the form offers to send
    # the link again.
    resend_to: str | None = None

    def __bool__(self) -> bool:
        return bool(self.summary)

    def add(self, message: str, field_id: str | None = None) -> None:
        """One more error (next to ``field_id`` if given, and in the summary)."""
        if field_id is not None and field_id not in self.fields:
            self.fields[field_id] = message
        self.summary.append(ErrorItem(message, field_id))


def sentence(text: str) -> str:
    """A message as a sentence: capital first letter, full stop at the end."""
    text = " ".join(text.split())
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def field_message(message: str, label: str) -> str:
    """A service's field message in words for people (pydantic's phrasing rewritten)."""
    lowered = message.lower()
    if lowered in ("field required", "required") or "at least 1 character" in lowered:
        return f"Enter {label.lower()}."
    if lowered.startswith("value is not a valid email address"):
        return "Enter an email address in the correct format, like name@example.org."
    return sentence(message)


def errors_from(problem: Problem, labels: Mapping[str, str]) -> FormErrors:
    """The form's errors for ``problem``; ``labels`` maps the service's field names
    (``errors[].field``) to the label of the form's input with that id."""
    errors = FormErrors()
    for item in problem.errors:
        name = item.field.rsplit(".", 1)[-1]
        if name in labels:
            errors.add(field_message(item.message, labels[name]), name)
        elif item.message:
            errors.add(sentence(item.message))
    if not problem.errors or not errors.fields:
        detail = problem.detail if not problem.detail.endswith("see `errors`.") else problem.title
        if not any(i.message == sentence(detail) for i in errors.summary):
            errors.summary.insert(0, ErrorItem(sentence(detail)))
    return errors
