"""Cursor pagination shared by every list endpoint that can grow long.

A cursor is an opaque, URL-safe token holding the sort value and id of the last
row returned; the next page starts strictly after it. Unlike offsets this stays
fast and stable while rows are being inserted.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from kefu.api.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class CursorArgsSchema(Schema):
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1 to {MAX_LIMIT}."},
    )
    cursor = fields.String(
        load_default=None,
        metadata={"description": "The `next_cursor` of the previous page."},
    )


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """A `{items: [...], next_cursor}` envelope schema for `item_schema`."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(
                allow_none=True,
                metadata={"description": "Pass as `cursor` for the next page; null on the last."},
            ),
        },
        name=name,
    )


@dataclass(frozen=True)
class SortKey:
    column: InstrumentedAttribute[Any]
    descending: bool
    is_datetime: bool = False


def encode_cursor(sort_name: str, value: Any, row_id: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort_name, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort_name: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValidationFailed("cursor", "is not a cursor returned by this endpoint") from exc
    if name != sort_name or not isinstance(row_id, int):
        raise ValidationFailed(
            "cursor", "belongs to a different sort order; start again without it"
        )
    return value, row_id


def paginate(
    query: Select[Any],
    *,
    id_column: InstrumentedAttribute[int],
    sort_name: str,
    sort: SortKey,
    limit: int,
    cursor: str | None,
) -> Select[Any]:
    """Apply keyset ordering, the cursor condition and limit+1 (to detect a next page)."""
    column = sort.column
    if cursor:
        value, last_id = decode_cursor(cursor, sort_name)
        if sort.is_datetime and value is not None:
            try:
                value = datetime.fromisoformat(value)
            except (TypeError, ValueError) as exc:
                raise ValidationFailed(
                    "cursor", "is not a cursor returned by this endpoint"
                ) from exc
        if sort.descending:
            after = or_(column < value, and_(column == value, id_column < last_id))
        else:
            after = or_(column > value, and_(column == value, id_column > last_id))
        query = query.where(after)
    if sort.descending:
        query = query.order_by(column.desc(), id_column.desc())
    else:
        query = query.order_by(column.asc(), id_column.asc())
    return query.limit(limit + 1)


def page_of(rows: list[Any], *, limit: int, sort_name: str, sort_attr: str) -> dict[str, Any]:
    has_more = len(rows) > limit
    items = rows[:limit]
    next_cursor = None
    if has_more and items:
        last = items[-1]
        next_cursor = encode_cursor(sort_name, getattr(last, sort_attr), last.id)
    return {"items": items, "next_cursor": next_cursor}
