"""Pydantic building blocks shared by every endpoint: money, timestamps, pages, errors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    WithJsonSchema,
)

from ecom.db import as_utc, money


def money_text(value: Decimal) -> str:
    """Money as the API writes it: a two-place decimal string ("29.99")."""
    return f"{money(value):.2f}"


# Money leaves the API as a two-place decimal string ("29.99"), never a float.
Money = Annotated[
    Decimal,
    PlainSerializer(money_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["29.99"]}),
]

# SQLite hands back naive datetimes; they are UTC, so say so on the way out.
UtcDateTime = Annotated[datetime, BeforeValidator(as_utc)]

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _integral_number(value):
    # JSON Schema counts 3.0 as an integer; strict pydantic would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer in a strict request body: 3 and 3.0 pass; "3", 3.5 and true do not.
JsonInt = Annotated[int, Strict(), BeforeValidator(_integral_number)]

T = TypeVar("T")


class ApiModel(BaseModel):
    """Base of response models: built from ORM objects or dicts."""

    model_config = ConfigDict(from_attributes=True)


class RequestBody(BaseModel):
    """Base of request bodies: exact types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Query(BaseModel):
    """Base of query-string models (values arrive as strings, so not strict)."""

    model_config = ConfigDict(extra="ignore")


class PageQuery(Query):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(24, ge=1, le=100)


class Page(ApiModel, Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int
    pages: int


class ErrorOut(BaseModel):
    """Every error: ``detail``, and the extensions some errors carry."""

    detail: str
    errors: dict[str, list[str]] | None = Field(
        None, description="Validation errors (400, 422): messages per field, query parameter or header")
    shortages: dict[str, int] | None = Field(
        None, description="409 when stock is short: the units available of each short SKU")


class ItemList(ApiModel, Generic[T]):
    """An unpaginated list."""

    items: list[T]
