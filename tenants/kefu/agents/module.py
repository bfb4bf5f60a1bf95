from kefu.agents import jobs
from kefu.agents.api import blp
from kefu.agents.platform_api import blp as platform_blp
from kefu.agents.service.principals import resolve_agent_principal
from kefu.agents.service.roles import seed_default_roles
from kefu.modules import ModuleDescriptor

MODULE = ModuleDescriptor(
    name="agents",
    title="Agents, organisation and roles",
    blueprint=blp,
    platform_blueprint=platform_blp,
    permissions={
        "agents.view": "See agent profiles within your scope",
        "agents.manage": "Invite, edit, move and deactivate agents; grant roles below your rank",
        "org.view": "See organisation units within your scope",
        "org.manage": "Create, edit and copy organisation units",
        "roles.manage": "Create and edit roles ranked below your own",
        "audit.view": "Read this tenant's audit log",
    },
    jobs=jobs.JOBS,
    provision=seed_default_roles,
    resolve_agent=resolve_agent_principal,
)
