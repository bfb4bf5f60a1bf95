from __future__ import annotations

from marshmallow import Schema, fields, validate

from kefu.tenancy.models import TenantStatus
from kefu.tenancy.slugs import SLUG_PATTERN


class TenantSchema(Schema):
    id = fields.Integer(dump_only=True)
    slug = fields.String(dump_only=True)
    display_name = fields.String()
    status = fields.Enum(TenantStatus, by_value=True, dump_only=True)
    modules = fields.List(fields.String())
    settings = fields.Dict()
    schema_revision = fields.String(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class TenantCreateSchema(Schema):
    # The slug's rules are checked by the service so that the error names the rule.
    slug = fields.String(required=True, metadata={"pattern": SLUG_PATTERN})
    display_name = fields.String(required=True)
    modules = fields.List(
        fields.String(),
        load_default=None,
        metadata={"description": "Modules to enable; default: every module enabled by default."},
    )
    settings = fields.Dict(load_default=dict)


class TenantUpdateSchema(Schema):
    display_name = fields.String()
    modules = fields.List(fields.String())
    settings = fields.Dict(metadata={"description": "Merged into the tenant's settings."})


class TenantListArgsSchema(Schema):
    status = fields.Enum(TenantStatus, by_value=True, load_default=None)


class TenantDeleteArgsSchema(Schema):
    confirm = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Must repeat the tenant's slug."},
    )
