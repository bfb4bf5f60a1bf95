from __future__ import annotations

from marshmallow import Schema, fields, validate

from kefu.access.passwords import MIN_PASSWORD_LENGTH

PASSWORD = validate.Length(min=1, max=1000)


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=320))
    password = fields.String(required=True, load_only=True, validate=PASSWORD)
    tenant = fields.String(
        load_default=None, metadata={"description": "Slug of the tenant to work in (optional)."}
    )


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class ChooseTenantSchema(Schema):
    tenant = fields.String(required=True, validate=validate.Length(min=3, max=40))


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, load_only=True, validate=PASSWORD)
    new_password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=MIN_PASSWORD_LENGTH, max=1000)
    )


class PasswordResetRequestSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=320))


class PasswordResetConfirmSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=10, max=200))
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD)


class TenantRefSchema(Schema):
    slug = fields.String()
    display_name = fields.String()


class AccountSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    display_name = fields.String()
    platform_role = fields.String(allow_none=True)
    last_login_at = fields.DateTime(allow_none=True)


class TokenPairSchema(Schema):
    token_type = fields.String(dump_default="Bearer")
    access_token = fields.String(metadata={"description": "Send as Authorization: Bearer ..."})
    refresh_token = fields.String(metadata={"description": "Single use; POST /refresh."})
    expires_at = fields.DateTime()
    tenant = fields.Nested(TenantRefSchema, allow_none=True)
    account = fields.Nested(AccountSchema)
    tenants = fields.List(
        fields.Nested(TenantRefSchema), metadata={"description": "Tenants this account works in."}
    )


class MeSchema(Schema):
    account = fields.Nested(AccountSchema)
    tenant = fields.Nested(TenantRefSchema, allow_none=True)
    tenants = fields.List(fields.Nested(TenantRefSchema))


class ApiKeyCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    scopes = fields.List(
        fields.String(),
        load_default=None,
        metadata={"description": "Permissions the key may use; omitted: every permission."},
    )
    expires_at = fields.AwareDateTime(load_default=None)


class ApiKeySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    prefix = fields.String(metadata={"description": "Visible part of the key, for recognising it."})
    scopes = fields.List(fields.String(), allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    replaced_by_id = fields.Integer(allow_none=True)


class CreatedApiKeySchema(ApiKeySchema):
    key = fields.String(metadata={"description": "The secret key. Shown only in this response."})


class SupportGrantCreateSchema(Schema):
    email = fields.String(required=True, metadata={"description": "The support engineer."})
    hours = fields.Integer(required=True, validate=validate.Range(min=1, max=168))
    reason = fields.String(required=True, validate=validate.Length(min=3, max=500))


class SupportGrantSchema(Schema):
    id = fields.Integer()
    email = fields.Function(lambda grant: grant.account.email)
    reason = fields.String()
    granted_by = fields.String()
    expires_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class AuditQuerySchema(Schema):
    tenant = fields.String(load_default=None)
    actor = fields.String(load_default=None)
    action = fields.String(load_default=None, metadata={"description": "Exact or prefix with *"})
    since = fields.AwareDateTime(load_default=None)
    until = fields.AwareDateTime(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    before_id = fields.Integer(load_default=None, metadata={"description": "Page: ids below this"})


class AuditEventSchema(Schema):
    id = fields.Integer()
    actor = fields.String()
    action = fields.String()
    tenant_slug = fields.String(allow_none=True)
    target = fields.String(allow_none=True)
    details = fields.Dict()
    address = fields.String(allow_none=True)
    created_at = fields.DateTime()
