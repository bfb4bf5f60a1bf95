"""Tenant API: customer profiles."""

from __future__ import annotations

from typing import Any

from flask import g, send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from kefu.access.authz import current_principal, requires
from kefu.api.idempotency import IDEMPOTENCY_HEADER_DOC, idempotent
from kefu.customers import jobs, service
from kefu.customers.models import Customer, CustomerExport
from kefu.customers.schemas import (
    CustomerCreateSchema,
    CustomerExportSchema,
    CustomerListArgsSchema,
    CustomerPageSchema,
    CustomerSchema,
    CustomerUpdateSchema,
    MergeSchema,
)
from kefu.database import after_commit
from kefu.jobs import enqueue_tenant_job

blp = Blueprint(
    "customers",
    __name__,
    description="Customer profiles: contact points, external ids, tags, VIP level, merge, export.",
)
SECURITY = [{"TenantApiKey": []}, {"BearerToken": []}]
NOT_FOUND = "No such customer in this tenant (`customer_not_found`)."


@blp.route("")
class CustomersView(MethodView):
    @requires("customers.view")
    @blp.arguments(CustomerListArgsSchema, location="query")
    @blp.response(200, CustomerPageSchema)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List customers: filter by tag, email, phone or external id; search by name"""
        return service.list_customers(g.db, current_principal(), args)

    @requires("customers.edit")
    @idempotent
    @blp.arguments(CustomerCreateSchema)
    @blp.response(201, CustomerSchema)
    @blp.alt_response(409, description="An external id belongs to another customer.")
    @blp.doc(security=SECURITY, parameters=[IDEMPOTENCY_HEADER_DOC])
    def post(self, data: dict[str, Any]) -> Customer:
        """Create a customer"""
        return service.present(service.create_customer(g.db, data), current_principal())


@blp.route("/<int:customer_id>")
class CustomerView(MethodView):
    @requires("customers.view")
    @blp.response(200, CustomerSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.doc(security=SECURITY)
    def get(self, customer_id: int) -> Customer:
        """Get a customer"""
        return service.present(service.get_customer(g.db, customer_id), current_principal())

    @requires("customers.edit")
    @blp.arguments(CustomerUpdateSchema)
    @blp.response(200, CustomerSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], customer_id: int) -> Customer:
        """Update a customer (only the fields sent; lists are replaced)"""
        customer = service.update_customer(g.db, customer_id, data)
        return service.present(customer, current_principal())

    @requires("customers.edit")
    @blp.response(204)
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.doc(security=SECURITY)
    def delete(self, customer_id: int) -> None:
        """Delete a customer"""
        service.delete_customer(g.db, customer_id)


@blp.route("/<int:customer_id>/merge")
class CustomerMergeView(MethodView):
    @requires("customers.merge")
    @idempotent
    @blp.arguments(MergeSchema)
    @blp.response(200, CustomerSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.doc(security=SECURITY, parameters=[IDEMPOTENCY_HEADER_DOC])
    def post(self, data: dict[str, Any], customer_id: int) -> Customer:
        """Merge a duplicate profile (`source_id`) into this one"""
        merged = service.merge_customers(g.db, customer_id, data["source_id"])
        return service.present(merged, current_principal())


@blp.route("/<int:customer_id>/reveal")
class CustomerRevealView(MethodView):
    @requires("customers.view_pii")
    @blp.response(200, CustomerSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.doc(security=SECURITY)
    def post(self, customer_id: int) -> Any:
        """Show a customer's unmasked contact details (audited)"""
        return service.reveal_customer(g.db, current_principal(), customer_id)


@blp.route("/exports")
class CustomerExportsView(MethodView):
    @requires("customers.export")
    @idempotent
    @blp.response(202, CustomerExportSchema)
    @blp.doc(security=SECURITY, parameters=[IDEMPOTENCY_HEADER_DOC])
    def post(self) -> CustomerExport:
        """Start a CSV export of every customer (a background job)"""
        export = service.request_export(g.db, current_principal())
        tenant_slug, export_id = g.tenant.slug, export.id
        # Enqueue after commit so the worker never looks for a row it cannot see yet.
        after_commit(
            g.db,
            lambda: enqueue_tenant_job(tenant_slug, jobs.export_customers_csv, export_id=export_id),
        )
        return export


@blp.route("/exports/<int:export_id>")
class CustomerExportView(MethodView):
    @requires("customers.export")
    @blp.response(200, CustomerExportSchema)
    @blp.doc(security=SECURITY)
    def get(self, export_id: int) -> CustomerExport:
        """Show an export's progress"""
        return service.get_export(g.db, export_id)


@blp.route("/exports/<int:export_id>/download")
class CustomerExportDownloadView(MethodView):
    @requires("customers.export")
    @blp.response(200, description="CSV file (UTF-8 with BOM).")
    @blp.alt_response(409, description="The export has not finished (`export_not_ready`).")
    @blp.doc(security=SECURITY)
    def get(self, export_id: int) -> Any:
        """Download a finished export"""
        export = service.require_finished_export(g.db, export_id)
        path = jobs.export_directory(g.tenant.slug) / export.file_name
        return send_file(
            path, mimetype="text/csv", as_attachment=True, download_name=export.file_name
        )
