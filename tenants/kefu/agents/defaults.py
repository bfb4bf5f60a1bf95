"""The editable roles every new tenant starts with.

Ranks leave gaps so a tenant can slot its own roles in between. Nobody can grant
a role ranked at or above their own highest role, so a tenant admin cannot mint
another tenant admin: platform admins do that.
"""

from __future__ import annotations

from dataclasses import dataclass

CUSTOMER_READ = ("customers.view",)
CUSTOMER_WORK = ("customers.view", "customers.edit")
CUSTOMER_ALL = (
    "customers.view",
    "customers.view_pii",
    "customers.edit",
    "customers.merge",
    "customers.export",
)
PEOPLE_READ = ("agents.view", "org.view")
PEOPLE_MANAGE = ("agents.view", "org.view", "agents.manage")


@dataclass(frozen=True)
class DefaultRole:
    key: str
    name: str
    rank: int
    scope: str
    permissions: tuple[str, ...]
    for_outsourced: bool = False
    description: str = ""


ALL_PERMISSIONS = ("*",)  # expanded to the whole catalogue when seeded

DEFAULT_ROLES = (
    DefaultRole(
        "tenant_admin",
        "Tenant admin 租户管理员",
        100,
        "tenant",
        ALL_PERMISSIONS,
        description="Everything in this tenant.",
    ),
    DefaultRole(
        "supervisor",
        "Supervisor 主管",
        80,
        "subtree",
        (*CUSTOMER_ALL, *PEOPLE_MANAGE, "org.manage", "roles.manage", "audit.view"),
        description="Runs a department and everything below it.",
    ),
    DefaultRole(
        "team_lead",
        "Team lead 组长",
        60,
        "unit",
        (*CUSTOMER_ALL, *PEOPLE_MANAGE),
        description="Leads one team.",
    ),
    DefaultRole(
        "senior_agent",
        "Senior agent 高级客服",
        45,
        "own",
        (*CUSTOMER_WORK, "customers.view_pii", "customers.merge", *PEOPLE_READ),
    ),
    DefaultRole(
        "agent", "Agent 客服", 40, "own", (*CUSTOMER_WORK, "customers.view_pii", *PEOPLE_READ)
    ),
    DefaultRole("trainee", "Trainee 实习客服", 20, "own", (*CUSTOMER_READ, *PEOPLE_READ)),
    DefaultRole(
        "outsourced_lead",
        "Outsourced lead 外包组长",
        50,
        "subtree",
        (*CUSTOMER_WORK, "customers.export", *PEOPLE_MANAGE),
        for_outsourced=True,
        description="Leads a vendor's teams; sees no unmasked contact data.",
    ),
    DefaultRole(
        "outsourced_agent",
        "Outsourced agent 外包客服",
        30,
        "own",
        (*CUSTOMER_WORK, *PEOPLE_READ),
        for_outsourced=True,
    ),
    DefaultRole(
        "auditor",
        "Auditor 审计",
        10,
        "tenant",
        ("customers.view", "agents.view", "org.view", "audit.view"),
        description="Read-only, including the audit log.",
    ),
)
