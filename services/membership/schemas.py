"""Request-body pieces every feature's API shares."""

from __future__ import annotations

from pydantic import BaseModel, Field

from prodigy_users.runtime.text import Name


class Named(BaseModel):
    """A body with a person's or group's name: no control characters, spaces collapsed,
    never blank."""

    name: Name = Field(examples=["Ana Lima"])
