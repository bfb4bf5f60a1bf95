from __future__ import annotations

from marshmallow import Schema, fields, validate


class TokenRequestSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=320))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1000)
    )


class TokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "Bearer token; shown once."})
    expires_at = fields.DateTime(required=True)
    email = fields.String(required=True)
    platform_role = fields.String(required=True)


class ApiKeyCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ApiKeySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    prefix = fields.String(metadata={"description": "Visible part of the key, for recognising it."})
    created_by = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class CreatedApiKeySchema(ApiKeySchema):
    key = fields.String(metadata={"description": "The secret key. Shown only in this response."})
