"""Business rules of the agents module, split by domain: org units, roles,
agents, and principal resolution (effective permissions)."""
