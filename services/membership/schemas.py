"""Request-body pieces every feature's API shares."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


class Named(BaseModel):
    """A body with a person's or group's name: spaces collapsed, never blank."""

    name: str = Field(min_length=1, max_length=200, examples=["Ana Lima"])

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        return value
