from __future__ import annotations

import json
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from kefu.api.pagination import CursorArgsSchema, page_schema

PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9 ()\-.]{2,31}$")
MAX_ATTRIBUTES_BYTES = 16 * 1024
SORTS = ("created_at", "-created_at", "updated_at", "-updated_at", "name", "-name")


class PhoneField(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not PHONE_PATTERN.fullmatch(text.strip()):
            raise ValidationError(
                "must be a phone number: digits, optional leading +, spaces or dashes"
            )
        return text.strip()


class ExternalIdSchema(Schema):
    source = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_.-]{0,49}$", error="must be a lowercase system name"
        ),
        metadata={"description": "The other system, e.g. `shopify`, `zendesk`, `orders`."},
    )
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CustomerWriteSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    emails = fields.List(
        fields.Email(validate=validate.Length(max=320)), validate=validate.Length(max=20)
    )
    phones = fields.List(PhoneField(), validate=validate.Length(max=20))
    tags = fields.List(
        fields.String(validate=validate.Length(min=1, max=50)), validate=validate.Length(max=50)
    )
    attributes = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)))
    vip_level = fields.Integer(validate=validate.Range(min=0, max=10))
    external_ids = fields.List(fields.Nested(ExternalIdSchema), validate=validate.Length(max=20))

    @validates("attributes")
    def _attributes_size(self, value: dict[str, Any], **kwargs: Any) -> None:
        if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_ATTRIBUTES_BYTES:
            raise ValidationError(f"must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON")


class CustomerCreateSchema(CustomerWriteSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CustomerUpdateSchema(CustomerWriteSchema):
    """PATCH: only the fields sent change; lists are replaced as a whole."""


class CustomerSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    emails = fields.List(fields.String())
    phones = fields.List(fields.String())
    tags = fields.List(fields.String())
    attributes = fields.Dict()
    vip_level = fields.Integer()
    external_ids = fields.Method("_external_ids", metadata={"description": "[{source, id}]"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _external_ids(self, customer: Any) -> list[dict[str, str]]:
        return [{"source": e.source, "id": e.external_id} for e in customer.external_ids]


CustomerPageSchema = page_schema(CustomerSchema, "CustomerPage")


class CustomerListArgsSchema(CursorArgsSchema):
    q = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "Name contains."}
    )
    email = fields.String(validate=validate.Length(min=1, max=320))
    phone = fields.String(validate=validate.Length(min=1, max=32))
    tag = fields.String(validate=validate.Length(min=1, max=50))
    external_source = fields.String(validate=validate.Length(min=1, max=50))
    external_id = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "With `external_source`: the customer's id in that system."},
    )
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(SORTS))


class MergeSchema(Schema):
    source_id = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "The duplicate profile; it is folded into this one and deleted."},
    )


class CustomerExportSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    row_count = fields.Integer()
    error = fields.String(allow_none=True)
    requested_by = fields.String()
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    download_url = fields.Method("_download_url", allow_none=True)

    def _download_url(self, export: Any) -> str | None:
        if export.status != "done":
            return None
        return f"/api/v1/customers/exports/{export.id}/download"
