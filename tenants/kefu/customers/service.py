"""Customer profiles: the business rules. Every function takes the tenant's
session; the session's schema is the only tenant it can see."""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kefu import audit, events
from kefu.access.authz import Principal
from kefu.access.masking import mask_email, mask_phone, mask_text
from kefu.api.errors import ApiError, Conflict, NotFound, ValidationFailed
from kefu.api.pagination import SortKey, page_of, paginate
from kefu.customers.models import Customer, CustomerExport, CustomerExternalId
from kefu.platform_state import platform

SORT_KEYS = {
    "created_at": SortKey(Customer.created_at, descending=False, is_datetime=True),
    "-created_at": SortKey(Customer.created_at, descending=True, is_datetime=True),
    "updated_at": SortKey(Customer.updated_at, descending=False, is_datetime=True),
    "-updated_at": SortKey(Customer.updated_at, descending=True, is_datetime=True),
    "name": SortKey(Customer.name, descending=False),
    "-name": SortKey(Customer.name, descending=True),
}
_PHONE_SEPARATORS = re.compile(r"[ ()\-.]")
VIEW_PII = "customers.view_pii"
# Custom attributes whose key mentions one of these hold personal data.
PII_ATTRIBUTE_HINTS = (
    "address",
    "addr",
    "phone",
    "mobile",
    "email",
    "amount",
    "price",
    "地址",
    "电话",
    "手机",
    "邮箱",
    "金额",
    "价格",
)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_phone(phone: str) -> str:
    return _PHONE_SEPARATORS.sub("", phone.strip())


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _apply_fields(customer: Customer, data: dict[str, Any]) -> None:
    if "name" in data:
        customer.name = data["name"].strip()
    if "emails" in data:
        customer.emails = _unique(normalise_email(e) for e in data["emails"])
    if "phones" in data:
        customer.phones = _unique(normalise_phone(p) for p in data["phones"])
    if "tags" in data:
        customer.tags = _unique(t.strip() for t in data["tags"])
    if "attributes" in data:
        customer.attributes = data["attributes"]
    if "vip_level" in data:
        customer.vip_level = data["vip_level"]
    if "external_ids" in data:
        wanted = {(e["source"], e["id"]) for e in data["external_ids"]}
        customer.external_ids = [
            link for link in customer.external_ids if (link.source, link.external_id) in wanted
        ]
        kept = {(link.source, link.external_id) for link in customer.external_ids}
        for source, external_id in sorted(wanted - kept):
            customer.external_ids.append(CustomerExternalId(source=source, external_id=external_id))


def _flush_checking_external_ids(db: Session) -> None:
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:
        if "uq_customer_external_ids" in str(exc.orig):
            raise Conflict(
                "Another customer already has one of these external ids.",
                code="external_id_taken",
                errors={"external_ids": ["already belongs to another customer"]},
            ) from exc
        raise


def event_payload(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "emails": list(customer.emails),
        "phones": list(customer.phones),
        "tags": list(customer.tags),
        "vip_level": customer.vip_level,
        "external_ids": [{"source": e.source, "id": e.external_id} for e in customer.external_ids],
    }


def _published(db: Session, name: str, customer: Customer, **extra: Any) -> None:
    events.publish(
        db, name, {**event_payload(customer), **extra}, aggregate=f"customer:{customer.id}"
    )


def create_customer(db: Session, data: dict[str, Any]) -> Customer:
    customer = Customer(emails=[], phones=[], tags=[], attributes={}, vip_level=0)
    customer.external_ids = []
    _apply_fields(customer, data)
    db.add(customer)
    _flush_checking_external_ids(db)
    _published(db, "customer.created", customer)
    return customer


def get_customer(db: Session, customer_id: int) -> Customer:
    customer = db.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"Customer {customer_id} does not exist.", code="customer_not_found")
    return customer


def update_customer(db: Session, customer_id: int, data: dict[str, Any]) -> Customer:
    customer = get_customer(db, customer_id)
    _apply_fields(customer, data)
    _flush_checking_external_ids(db)
    _published(db, "customer.updated", customer, changed=sorted(data))
    return customer


def delete_customer(db: Session, customer_id: int) -> None:
    customer = get_customer(db, customer_id)
    _published(db, "customer.deleted", customer)
    db.delete(customer)
    db.flush()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered_query(args: dict[str, Any]) -> Select[Any]:
    query = select(Customer)
    if args.get("q"):
        query = query.where(Customer.name.ilike(f"%{_escape_like(args['q'])}%", escape="\\"))
    if args.get("email"):
        query = query.where(Customer.emails.contains([normalise_email(args["email"])]))
    if args.get("phone"):
        query = query.where(Customer.phones.contains([normalise_phone(args["phone"])]))
    if args.get("tag"):
        query = query.where(Customer.tags.contains([args["tag"]]))
    source, external_id = args.get("external_source"), args.get("external_id")
    if bool(source) != bool(external_id):
        missing = "external_id" if source else "external_source"
        raise ValidationFailed(missing, "is required when filtering by external id")
    if source:
        query = query.where(
            Customer.id.in_(
                select(CustomerExternalId.customer_id).where(
                    CustomerExternalId.source == source,
                    CustomerExternalId.external_id == external_id,
                )
            )
        )
    return query


def list_customers(db: Session, principal: Principal, args: dict[str, Any]) -> dict[str, Any]:
    sort_name = args.get("sort", "-created_at")
    sort = SORT_KEYS[sort_name]
    query = paginate(
        filtered_query(args),
        id_column=Customer.id,
        sort_name=sort_name,
        sort=sort,
        limit=args["limit"],
        cursor=args.get("cursor"),
    )
    rows = list(db.scalars(query))
    page = page_of(rows, limit=args["limit"], sort_name=sort_name, sort_attr=sort.column.key)
    page["items"] = [present(customer, principal) for customer in page["items"]]
    return page


def merge_customers(db: Session, target_id: int, source_id: int) -> Customer:
    """Fold `source` into `target`: contact points, tags and external ids are
    united, the target's attributes win over the source's, the higher VIP level
    stays; the source profile is deleted."""
    if target_id == source_id:
        raise ValidationFailed("source_id", "must differ from the customer being merged into")
    target = get_customer(db, target_id)
    source = get_customer(db, source_id)
    target.emails = _unique([*target.emails, *source.emails])
    target.phones = _unique([*target.phones, *source.phones])
    target.tags = _unique([*target.tags, *source.tags])
    target.attributes = {**source.attributes, **target.attributes}
    target.vip_level = max(target.vip_level, source.vip_level)
    for link in list(source.external_ids):
        link.customer = target
    db.flush()
    db.delete(source)
    db.flush()
    _published(db, "customer.merged", target, merged_id=source_id)
    return target


def request_export(db: Session, principal: Principal) -> CustomerExport:
    export = CustomerExport(
        status="queued",
        requested_by=principal.actor,
        row_count=0,
        masked=not principal.can(VIEW_PII),
    )
    db.add(export)
    db.flush()
    return export


def get_export(db: Session, export_id: int) -> CustomerExport:
    export = db.get(CustomerExport, export_id)
    if export is None:
        raise NotFound(f"Export {export_id} does not exist.", code="export_not_found")
    return export


def require_finished_export(db: Session, export_id: int) -> CustomerExport:
    export = get_export(db, export_id)
    if export.status != "done" or not export.file_name:
        raise ApiError(
            f"Export {export_id} is {export.status}; download it once it is done.",
            code="export_not_ready",
            status=409,
        )
    return export


def is_pii_attribute(key: str) -> bool:
    lowered = key.lower()
    return any(hint in lowered for hint in PII_ATTRIBUTE_HINTS)


def masked_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        key: mask_text(str(value)) if is_pii_attribute(key) else value
        for key, value in attributes.items()
    }


def present(customer: Customer, principal: Principal) -> Any:
    """The customer as this principal may see it: masked without customers.view_pii."""
    if principal.can(VIEW_PII):
        return customer
    return SimpleNamespace(
        id=customer.id,
        name=customer.name,
        emails=[mask_email(email) for email in customer.emails],
        phones=[mask_phone(phone) for phone in customer.phones],
        tags=customer.tags,
        attributes=masked_attributes(customer.attributes),
        vip_level=customer.vip_level,
        external_ids=customer.external_ids,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def reveal_customer(db: Session, principal: Principal, customer_id: int) -> Customer:
    principal.require(VIEW_PII)
    customer = get_customer(db, customer_id)
    audit.record_after_commit(
        db,
        platform().engine,
        actor=principal.actor,
        action="customer.pii_revealed",
        tenant_slug=principal.tenant_slug,
        target=f"customer:{customer_id}",
    )
    return customer
