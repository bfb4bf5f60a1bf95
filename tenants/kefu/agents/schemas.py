from __future__ import annotations

from marshmallow import Schema, fields, validate

from kefu.agents.models import LEVELS, SCOPES, SOURCINGS, UNIT_KINDS, WORKING_STATUSES

NAME = validate.Length(min=1, max=200)


class UnitCreateSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    kind = fields.String(load_default="team", validate=validate.OneOf(UNIT_KINDS))
    sourcing = fields.String(load_default="in_house", validate=validate.OneOf(SOURCINGS))
    vendor = fields.String(
        load_default=None,
        validate=NAME,
        metadata={"description": "Vendor company; required when outsourced."},
    )
    parent_id = fields.Integer(load_default=None)


class UnitUpdateSchema(Schema):
    name = fields.String(validate=NAME)
    kind = fields.String(validate=validate.OneOf(UNIT_KINDS))
    vendor = fields.String(validate=NAME)


class UnitSchema(Schema):
    id = fields.Integer()
    parent_id = fields.Integer(allow_none=True)
    name = fields.String()
    kind = fields.String()
    sourcing = fields.String()
    vendor = fields.String(allow_none=True)
    path = fields.String()
    created_at = fields.DateTime()


class RoleRefSchema(Schema):
    id = fields.Integer()
    key = fields.String()
    name = fields.String()
    rank = fields.Integer()


class RoleWriteSchema(Schema):
    name = fields.String(validate=NAME)
    description = fields.String(validate=validate.Length(max=500))
    rank = fields.Integer(validate=validate.Range(min=1, max=10_000))
    scope = fields.String(validate=validate.OneOf(SCOPES))
    permissions = fields.List(fields.String(), validate=validate.Length(max=200))
    for_outsourced = fields.Boolean()


class RoleCreateSchema(RoleWriteSchema):
    key = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_]{1,63}$", error="must be lowercase letters, digits and underscores"
        ),
    )
    name = fields.String(required=True, validate=NAME)
    rank = fields.Integer(required=True, validate=validate.Range(min=1, max=10_000))
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    permissions = fields.List(fields.String(), required=True, validate=validate.Length(max=200))


class RoleSchema(Schema):
    id = fields.Integer()
    key = fields.String()
    name = fields.String()
    description = fields.String()
    rank = fields.Integer()
    scope = fields.String()
    permissions = fields.List(fields.String())
    for_outsourced = fields.Boolean()


PROFILE = {
    "display_name": fields.String(validate=NAME),
    "level": fields.String(
        validate=validate.Length(min=1, max=40),
        metadata={"description": f"{', '.join(LEVELS)} or tenant-defined"},
    ),
    "skills": fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=50)
    ),
    "languages": fields.List(
        fields.String(validate=validate.Length(min=2, max=16)), validate=validate.Length(max=20)
    ),
    "max_concurrent": fields.Integer(validate=validate.Range(min=0, max=100)),
}


class AgentInviteSchema(Schema.from_dict(PROFILE)):  # type: ignore[misc]
    email = fields.Email(required=True)
    display_name = fields.String(required=True, validate=NAME)
    unit_id = fields.Integer(load_default=None)
    role_ids = fields.List(fields.Integer(), load_default=list)


class AgentUpdateSchema(Schema.from_dict(PROFILE)):  # type: ignore[misc]
    status = fields.String(validate=validate.OneOf(("active", "deactivated")))


class AgentMoveSchema(Schema):
    unit_id = fields.Integer(required=True, allow_none=True)


class WorkingStatusSchema(Schema):
    working_status = fields.String(required=True, validate=validate.OneOf(WORKING_STATUSES))


class AgentListArgsSchema(Schema):
    unit_id = fields.Integer()
    skill = fields.String()
    status = fields.String(validate=validate.OneOf(("active", "deactivated")))


class AgentSchema(Schema):
    id = fields.Integer()
    account_id = fields.Integer()
    email = fields.String()
    display_name = fields.String()
    level = fields.String()
    skills = fields.List(fields.String())
    languages = fields.List(fields.String())
    max_concurrent = fields.Integer()
    working_status = fields.String()
    status = fields.String()
    unit_id = fields.Integer(allow_none=True)
    roles = fields.List(fields.Nested(RoleRefSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PrincipalSchema(Schema):
    kind = fields.String()
    actor = fields.String()
    agent_id = fields.Integer(allow_none=True)
    unit_id = fields.Integer(allow_none=True)
    max_rank = fields.Integer()
    permissions = fields.Method("_permissions")

    def _permissions(self, principal) -> dict[str, str]:
        return {name: scope.name for name, scope in sorted(principal.permissions.items())}


class TenantAdminSchema(Schema):
    email = fields.Email(required=True)
    display_name = fields.String(required=True, validate=NAME)


class TeamTemplateSchema(Schema):
    source_unit_id = fields.Integer(required=True)
    target_parent_id = fields.Integer(load_default=None)
    target_tenant = fields.String(
        load_default=None, metadata={"description": "Copy into another tenant (platform API only)."}
    )
    name = fields.String(load_default=None, validate=NAME)
