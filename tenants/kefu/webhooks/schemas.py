from __future__ import annotations

from marshmallow import Schema, fields, validate


def events_field(required: bool = False) -> fields.List:
    return fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        required=required,
        validate=validate.Length(min=1, max=100),
        metadata={"description": 'Event names, or ["*"] for every event.'},
    )


class EndpointCreateSchema(Schema):
    url = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=2000),
    )
    events = events_field(required=True)
    description = fields.String(load_default="", validate=validate.Length(max=200))
    include_pii = fields.Boolean(
        load_default=False,
        metadata={"description": "Send unmasked contact details (needs customers.view_pii)."},
    )


class EndpointUpdateSchema(Schema):
    url = fields.Url(
        schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000)
    )
    events = events_field()
    description = fields.String(validate=validate.Length(max=200))
    active = fields.Boolean(metadata={"description": "true re-enables a disabled endpoint"})
    rotate_secret = fields.Boolean(metadata={"description": "derive a new signing secret"})
    include_pii = fields.Boolean()


class EndpointSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    description = fields.String()
    events = fields.List(fields.String())
    active = fields.Boolean()
    include_pii = fields.Boolean()
    consecutive_failures = fields.Integer()
    disabled_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()


class EndpointWithSecretSchema(EndpointSchema):
    secret = fields.String(metadata={"description": "Signing secret (see docs/webhooks.md)."})


class DeliverySchema(Schema):
    id = fields.Integer()
    endpoint_id = fields.Integer()
    event_id = fields.Integer()
    event_name = fields.String()
    status = fields.String(metadata={"description": "pending, succeeded or failed"})
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime()
    response_code = fields.Integer(allow_none=True)
    latency_ms = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)


class DeliveryListArgsSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
