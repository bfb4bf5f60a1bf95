"""Tenant API: webhook endpoints, their delivery log, test deliveries, replay."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from kefu.access.authz import current_principal, requires
from kefu.webhooks import service
from kefu.webhooks.schemas import (
    DeliveryListArgsSchema,
    DeliverySchema,
    EndpointCreateSchema,
    EndpointSchema,
    EndpointUpdateSchema,
    EndpointWithSecretSchema,
)

blp = Blueprint(
    "webhooks",
    __name__,
    description="Webhook endpoints: signed deliveries of domain events (see docs/webhooks.md).",
)
SECURITY = [{"TenantApiKey": []}, {"BearerToken": []}]


def _with_secret(endpoint: Any) -> dict[str, Any]:
    fields = {name: getattr(endpoint, name) for name in EndpointSchema().fields}
    return {**fields, "secret": service.derive_secret(g.tenant.slug, endpoint)}


@blp.route("")
class EndpointsView(MethodView):
    @requires("webhooks.view")
    @blp.response(200, EndpointSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self) -> Any:
        """List webhook endpoints"""
        return service.list_endpoints(g.db)

    @requires("webhooks.manage")
    @blp.arguments(EndpointCreateSchema)
    @blp.response(201, EndpointWithSecretSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Any:
        """Register an endpoint (private and loopback addresses are refused)"""
        endpoint = service.create_endpoint(g.db, current_principal(), data, g.tenant.settings)
        return _with_secret(endpoint)


@blp.route("/<int:endpoint_id>")
class EndpointView(MethodView):
    @requires("webhooks.manage")
    @blp.response(200, EndpointWithSecretSchema)
    @blp.doc(security=SECURITY)
    def get(self, endpoint_id: int) -> Any:
        """Show an endpoint with its signing secret"""
        return _with_secret(service.get_endpoint(g.db, endpoint_id))

    @requires("webhooks.manage")
    @blp.arguments(EndpointUpdateSchema)
    @blp.response(200, EndpointWithSecretSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], endpoint_id: int) -> Any:
        """Change the URL or events, re-enable, or rotate the secret"""
        endpoint = service.update_endpoint(
            g.db, current_principal(), endpoint_id, data, g.tenant.settings
        )
        return _with_secret(endpoint)

    @requires("webhooks.manage")
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, endpoint_id: int) -> None:
        """Delete an endpoint and its delivery log"""
        service.delete_endpoint(g.db, current_principal(), endpoint_id)


@blp.route("/<int:endpoint_id>/test")
class EndpointTestView(MethodView):
    @requires("webhooks.manage")
    @blp.response(202, DeliverySchema)
    @blp.doc(security=SECURITY)
    def post(self, endpoint_id: int) -> Any:
        """Send a `webhook.test` delivery now"""
        return service.send_test(g.db, current_principal(), endpoint_id)


@blp.route("/<int:endpoint_id>/deliveries")
class DeliveriesView(MethodView):
    @requires("webhooks.view")
    @blp.arguments(DeliveryListArgsSchema, location="query")
    @blp.response(200, DeliverySchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any], endpoint_id: int) -> Any:
        """The delivery log, newest first: status, response code, latency, error"""
        return service.list_deliveries(g.db, endpoint_id, args["limit"])


@blp.route("/deliveries/<int:delivery_id>/replay")
class ReplayView(MethodView):
    @requires("webhooks.manage")
    @blp.response(202, DeliverySchema)
    @blp.doc(security=SECURITY)
    def post(self, delivery_id: int) -> Any:
        """Deliver an earlier delivery's body again, as a new delivery"""
        return service.replay_delivery(g.db, current_principal(), delivery_id)
