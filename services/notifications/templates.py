"""The emails themselves: a subject, a plain-text part and an HTML part per template.

Templates live here as strings (no package data to ship). HTML is autoescaped, so a
name like ``<script>`` arrives as text; the text parts are not escaped. No template
ever receives a password: only the login email and a single-use link.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from jinja2 import DictLoader, Environment, StrictUndefined, meta, select_autoescape

_LAYOUT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{% block title %}{% endblock %}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #222;">
{% block body %}{% endblock %}
<p style="color: #777; font-size: small;">{% block footer %}This link works once. \
If you did not expect this email, you can ignore it.{% endblock %}</p>
</body>
</html>
"""

_SOURCES: dict[str, str] = {
    "layout.html": _LAYOUT,
    "welcome.subject.txt": "Your account for {{ department }}",
    "welcome.txt": """\
Hello {{ name }},

Your account for {{ department }} is ready.

Your login email is: {{ email }}

Set your password here:
{{ url }}

The link works once and expires at {{ expires_at | utc }}.

If you did not expect this email, you can ignore it.
""",
    "welcome.html": """\
{% extends "layout.html" %}
{% block title %}Your account for {{ department }}{% endblock %}
{% block body %}
<p>Hello {{ name }},</p>
<p>Your account for <strong>{{ department }}</strong> is ready.</p>
<p>Your login email is: <strong>{{ email }}</strong></p>
<p><a href="{{ url }}">Set your password</a></p>
<p>Or paste this link into your browser:<br><code>{{ url }}</code></p>
<p>The link expires at {{ expires_at | utc }}.</p>
{% endblock %}
""",
    "password_reset.subject.txt": "Reset your Prodigy password",
    "password_reset.txt": """\
Hello {{ name }},

{% if admin_asked %}An admin of {{ department }} asked{% else %}Someone asked{% endif %} \
to reset the password of your Prodigy account ({{ email }}).

Choose a new password here:
{{ url }}

The link works once and expires at {{ expires_at | utc }}.

If you did not ask for this, ignore this email: your password stays as it is.
""",
    "password_reset.html": """\
{% extends "layout.html" %}
{% block title %}Reset your password{% endblock %}
{% block body %}
<p>Hello {{ name }},</p>
<p>{% if admin_asked %}An admin of <strong>{{ department }}</strong> asked{% else %}Someone \
asked{% endif %} to reset the password of your Prodigy account (<strong>{{ email }}</strong>).</p>
<p><a href="{{ url }}">Choose a new password</a></p>
<p>Or paste this link into your browser:<br><code>{{ url }}</code></p>
<p>The link expires at {{ expires_at | utc }}.
If you did not ask for this, your password stays as it is.</p>
{% endblock %}
""",
    "invitation.subject.txt": "You are invited to join {{ department }} on Prodigy",
    "invitation.txt": """\
Hello{% if name %} {{ name }}{% endif %},

{{ inviter or "An admin" }} invited you to join {{ department }} on Prodigy as {{ role }}.

Accept the invitation here:
{{ url }}

Already have a Prodigy account? Sign in when you accept: you keep it, whatever
email it uses. No account yet? You create one while accepting.

This invitation was sent to {{ email }} and expires at {{ expires_at | utc }}.

If you did not expect this email, you can ignore it.
""",
    "invitation.html": """\
{% extends "layout.html" %}
{% block title %}Join {{ department }}{% endblock %}
{% block body %}
<p>Hello{% if name %} {{ name }}{% endif %},</p>
<p>{{ inviter or "An admin" }} invited you to join <strong>{{ department }}</strong> \
on Prodigy as {{ role }}.</p>
<p><a href="{{ url }}">Accept the invitation</a></p>
<p>Or paste this link into your browser:<br><code>{{ url }}</code></p>
<p>Already have a Prodigy account? Sign in when you accept: you keep it, whatever email it
uses. No account yet? You create one while accepting.</p>
<p>This invitation was sent to <strong>{{ email }}</strong> and expires at
{{ expires_at | utc }}.</p>
{% endblock %}
{% block footer %}If you did not expect this email, you can ignore it.{% endblock %}
""",
    "invitation_reminder.subject.txt": (
        "Reminder: you are invited to join {{ department }} on Prodigy"
    ),
    "invitation_reminder.txt": """\
Hello{% if name %} {{ name }}{% endif %},

A reminder: {{ inviter or "an admin" }} invited you to join {{ department }} on Prodigy \
as {{ role }}, and the invitation is still open.

Accept it here:
{{ url }}

Already have a Prodigy account? Sign in when you accept: you keep it, whatever
email it uses. No account yet? You create one while accepting.

This invitation was sent to {{ email }} and expires at {{ expires_at | utc }}.

If you did not expect this email, you can ignore it.
""",
    "invitation_reminder.html": """\
{% extends "layout.html" %}
{% block title %}Reminder: join {{ department }}{% endblock %}
{% block body %}
<p>Hello{% if name %} {{ name }}{% endif %},</p>
<p>A reminder: {{ inviter or "an admin" }} invited you to join <strong>{{ department }}</strong>
on Prodigy as {{ role }}, and the invitation is still open.</p>
<p><a href="{{ url }}">Accept the invitation</a></p>
<p>Or paste this link into your browser:<br><code>{{ url }}</code></p>
<p>Already have a Prodigy account? Sign in when you accept: you keep it, whatever email it
uses. No account yet? You create one while accepting.</p>
<p>This invitation was sent to <strong>{{ email }}</strong> and expires at
{{ expires_at | utc }}.</p>
{% endblock %}
{% block footer %}If you did not expect this email, you can ignore it.{% endblock %}
""",
    "welcome_joined.subject.txt": "Welcome to {{ department }}",
    "welcome_joined.txt": """\
Hello {{ name }},

You joined {{ department }} on Prodigy.

Sign in with your account ({{ email }}) to get started:
{{ url }}
""",
    "welcome_joined.html": """\
{% extends "layout.html" %}
{% block title %}Welcome to {{ department }}{% endblock %}
{% block body %}
<p>Hello {{ name }},</p>
<p>You joined <strong>{{ department }}</strong> on Prodigy.</p>
<p>Sign in with your account (<strong>{{ email }}</strong>) to get started:
<a href="{{ url }}">{{ url }}</a></p>
{% endblock %}
{% block footer %}You get this email because you joined {{ department }}.{% endblock %}
""",
    "confirm_email.subject.txt": "Confirm your email to join {{ department }}",
    "confirm_email.txt": """\
Hello {{ name }},

Someone (we hope you) registered with this address, {{ email }}, to join \
{{ department }} on Prodigy.

To confirm it was you, open this link and enter the password you chose when you
registered:
{{ url }}

The link works once and expires at {{ expires_at | utc }}. Until you confirm, you
cannot sign in and you have not joined {{ department }}.

If it was not you, ignore this email: nothing happens. Nobody can use your address
without this link and the password they chose, and the registration is deleted
when the link expires.
""",
    "confirm_email.html": """\
{% extends "layout.html" %}
{% block title %}Confirm your email to join {{ department }}{% endblock %}
{% block body %}
<p>Hello {{ name }},</p>
<p>Someone (we hope you) registered with this address, <strong>{{ email }}</strong>, to join
<strong>{{ department }}</strong> on Prodigy.</p>
<p>To confirm it was you, open this link and enter the password you chose when you
registered:</p>
<p><a href="{{ url }}">Confirm my email</a></p>
<p>Or paste this link into your browser:<br><code>{{ url }}</code></p>
<p>The link expires at {{ expires_at | utc }}. Until you confirm, you cannot sign in and you
have not joined {{ department }}.</p>
{% endblock %}
{% block footer %}If it was not you, ignore this email: nothing happens. Nobody can use your \
address without this link and the password they chose, and the registration is deleted when \
the link expires.{% endblock %}
""",
    "sign_in_to_join.subject.txt": (
        "Someone tried to register with your address at {{ department }}"
    ),
    "sign_in_to_join.txt": """\
Hello,

Someone tried to register at {{ department }} on Prodigy with your address,
{{ email }}. You already have a Prodigy account with it, so nothing was created
and nothing about your account changed.

If it was you, sign in with your account to \
{% if via == "invitation" %}accept the invitation{% else %}join {{ department }}{% endif %}:
{{ url }}

Forgot your password? The sign-in page lets you choose a new one.

If it was not you, ignore this email.
""",
    "sign_in_to_join.html": """\
{% extends "layout.html" %}
{% block title %}Sign in to join {{ department }}{% endblock %}
{% block body %}
<p>Hello,</p>
<p>Someone tried to register at <strong>{{ department }}</strong> on Prodigy with your address,
<strong>{{ email }}</strong>. You already have a Prodigy account with it, so nothing was created
and nothing about your account changed.</p>
<p>If it was you, sign in with your account to
{% if via == "invitation" %}accept the invitation{% else %}join {{ department }}{% endif %}:</p>
<p><a href="{{ url }}">{% if via == "invitation" %}Accept the invitation{% else %}Join \
{{ department }}{% endif %}</a></p>
<p>Or paste this link into your browser:<br><code>{{ url }}</code></p>
<p>Forgot your password? The sign-in page lets you choose a new one.</p>
{% endblock %}
{% block footer %}If it was not you, ignore this email: your account is unchanged.{% endblock %}
""",
    "change_email.subject.txt": "Confirm your new Prodigy login email",
    "change_email.txt": """\
Hello {{ name }},

You asked to make this address, {{ email }}, the login email of your Prodigy account.

To confirm, open this link:
{{ url }}

The link works once and expires at {{ expires_at | utc }}. Until you open it, you
keep signing in with your current login email.

If it was not you, ignore this email: nothing changes without this link.
""",
    "change_email.html": """\
{% extends "layout.html" %}
{% block title %}Confirm your new Prodigy login email{% endblock %}
{% block body %}
<p>Hello {{ name }},</p>
<p>You asked to make this address, <strong>{{ email }}</strong>, the login email of your
Prodigy account.</p>
<p><a href="{{ url }}">Confirm my new login email</a></p>
<p>Or paste this link into your browser:<br><code>{{ url }}</code></p>
<p>The link expires at {{ expires_at | utc }}. Until you open it, you keep signing in with
your current login email.</p>
{% endblock %}
{% block footer %}If it was not you, ignore this email: nothing changes without this \
link.{% endblock %}
""",
    "link_address.subject.txt": "Confirm an address for your Prodigy account",
    "link_address.txt": """\
Hello {{ name }},

You asked to add this address, {{ email }}, to your Prodigy account. Once it is
added, departments that invite or add this address find your account, and you keep
signing in with your login email.

To confirm, open this link:
{{ url }}

The link works once and expires at {{ expires_at | utc }}.

If it was not you, ignore this email: nothing changes without this link.
""",
    "link_address.html": """\
{% extends "layout.html" %}
{% block title %}Confirm an address for your Prodigy account{% endblock %}
{% block body %}
<p>Hello {{ name }},</p>
<p>You asked to add this address, <strong>{{ email }}</strong>, to your Prodigy account.
Once it is added, departments that invite or add this address find your account, and
you keep signing in with your login email.</p>
<p><a href="{{ url }}">Add this address to my account</a></p>
<p>Or paste this link into your browser:<br><code>{{ url }}</code></p>
<p>The link expires at {{ expires_at | utc }}.</p>
{% endblock %}
{% block footer %}If it was not you, ignore this email: nothing changes without this \
link.{% endblock %}
""",
    "email_changed.subject.txt": "Your Prodigy login email was changed",
    "email_changed.txt": """\
Hello,

The login email of your Prodigy account is no longer this address, {{ email }}:
it is now {{ new_email }}. The change was confirmed from the new address.

From now on, sign in with the new address: {{ url }}
Your training records and departments are unchanged.

If you did not ask for this, contact an admin of your department at once.
""",
    "email_changed.html": """\
{% extends "layout.html" %}
{% block title %}Your Prodigy login email was changed{% endblock %}
{% block body %}
<p>Hello,</p>
<p>The login email of your Prodigy account is no longer this address,
<strong>{{ email }}</strong>: it is now <strong>{{ new_email }}</strong>. The change was
confirmed from the new address.</p>
<p>From now on, <a href="{{ url }}">sign in</a> with the new address. Your training records
and departments are unchanged.</p>
{% endblock %}
{% block footer %}If you did not ask for this, contact an admin of your department at \
once.{% endblock %}
""",
}

TEMPLATES = frozenset(
    name.removesuffix(".subject.txt") for name in _SOURCES if name.endswith(".subject.txt")
)


@dataclass(frozen=True)
class Rendered:
    """A rendered email, ready to put in a MIME message."""

    subject: str
    text: str
    html: str


def format_utc(value: datetime) -> str:
    """``2026-11-25 21:00 UTC``: unambiguous for readers anywhere."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=DictLoader(_SOURCES),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["utc"] = format_utc
    return env


def variables(template: str) -> frozenset[str]:
    """Every variable the template's parts may read (tests check no secret is among them)."""
    env = _environment()
    names: set[str] = set()
    for part in (f"{template}.subject.txt", f"{template}.txt", f"{template}.html"):
        names |= meta.find_undeclared_variables(env.parse(_SOURCES[part]))
    return frozenset(names)


def render(template: str, context: Mapping[str, object]) -> Rendered:
    """Render ``template`` (``welcome``, ``password_reset``, ``invitation``, ...) with ``context``.

    Raises ``KeyError`` for an unknown template and ``jinja2.UndefinedError`` when
    the context lacks a variable (never render an email with a hole in it).
    """
    if template not in TEMPLATES:
        raise KeyError(template)
    env = _environment()
    subject = env.get_template(f"{template}.subject.txt").render(context)
    return Rendered(
        subject=" ".join(subject.split()),  # one line: no header injection via a name
        text=env.get_template(f"{template}.txt").render(context),
        html=env.get_template(f"{template}.html").render(context),
    )
