"""Consistent masking of personal data for callers without `customers.view_pii`.

The same function masks every output channel (API, exports, webhook payloads,
websocket events), so an outsourced agent sees the same shape everywhere.
"""

from __future__ import annotations

import re

_DIGIT = re.compile(r"\d")


def mask_email(email: str) -> str:
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    """Keep a leading country code hint and the last four digits: +86*******8000."""
    digits = _DIGIT.findall(phone)
    if len(digits) <= 4:
        return "*" * len(phone)
    keep_head = 3 if phone.startswith("+") else 0
    head = phone[:keep_head]
    tail = "".join(digits[-4:])
    hidden = len(digits) - 4 - max(0, keep_head - 1)
    return f"{head}{'*' * max(hidden, 3)}{tail}"


def mask_text(value: str) -> str:
    """Addresses and other free text: first character only."""
    return f"{value[:1]}***" if value else value


def mask_amount(_: object) -> str:
    return "***"
