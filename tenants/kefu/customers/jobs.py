"""Background jobs of the customers module."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.access.masking import mask_email, mask_phone
from kefu.customers.models import Customer, CustomerExport
from kefu.customers.service import masked_attributes
from kefu.database import utcnow
from kefu.jobs import JobTenant
from kefu.platform_state import platform

BATCH_SIZE = 1000
COLUMNS = (
    "id",
    "name",
    "emails",
    "phones",
    "tags",
    "vip_level",
    "external_ids",
    "attributes",
    "created_at",
    "updated_at",
)


def export_directory(tenant_slug: str) -> Path:
    return platform().settings.data_dir / "exports" / tenant_slug


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Keep Excel from running a cell as a formula (CSV injection)."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _row(customer: Customer, masked: bool) -> list[str]:
    external = ";".join(f"{e.source}:{e.external_id}" for e in customer.external_ids)
    emails = [mask_email(e) for e in customer.emails] if masked else customer.emails
    phones = [mask_phone(p) for p in customer.phones] if masked else customer.phones
    attributes = masked_attributes(customer.attributes) if masked else customer.attributes
    return [
        str(customer.id),
        spreadsheet_safe(customer.name),
        spreadsheet_safe(";".join(emails)),
        ";".join(phones),  # normalised: + and digits only, never a formula
        spreadsheet_safe(";".join(customer.tags)),
        str(customer.vip_level),
        spreadsheet_safe(external),
        spreadsheet_safe(json.dumps(attributes, ensure_ascii=False)),
        customer.created_at.isoformat(),
        customer.updated_at.isoformat(),
    ]


def export_customers_csv(db: Session, tenant: JobTenant, export_id: int) -> int:
    """Write every customer to a CSV file (UTF-8 with BOM so Excel shows Chinese),
    masked when the requester may not see personal data.

    Idempotent: a finished export is left alone; a retried one rewrites its file. The
    export row stays locked until the job commits, so two runs for the same export (a
    job enqueued twice, a retry racing a slow first attempt) write the file one after
    the other and the second finds it done.
    """
    export = db.get(CustomerExport, export_id, with_for_update=True)
    if export is None or export.status == "done":
        return export.row_count if export else 0
    export.status = "running"
    masked = export.masked
    directory = export_directory(tenant.slug)
    directory.mkdir(parents=True, exist_ok=True)
    file_name = f"customers-{export_id}.csv"
    partial = directory / f".{file_name}.partial"
    count = 0
    with partial.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        last_id = 0
        while True:
            batch = list(
                db.scalars(
                    select(Customer)
                    .where(Customer.id > last_id)
                    .order_by(Customer.id)
                    .limit(BATCH_SIZE)
                )
            )
            if not batch:
                break
            writer.writerows(_row(customer, masked) for customer in batch)
            count += len(batch)
            last_id = batch[-1].id
            db.expunge_all()
    os.replace(partial, directory / file_name)
    export = db.get(CustomerExport, export_id)
    export.status = "done"
    export.file_name = file_name
    export.row_count = count
    export.finished_at = utcnow()
    return count
