from kefu import events
from kefu.modules import ModuleDescriptor
from kefu.webhooks import jobs, service
from kefu.webhooks.api import blp

events.subscribe(events.ALL_EVENTS)(service.queue_deliveries)

MODULE = ModuleDescriptor(
    name="webhooks",
    title="Webhooks for integrators",
    blueprint=blp,
    permissions={
        "webhooks.view": "See webhook endpoints and their delivery log",
        "webhooks.manage": "Register, change, test and replay webhooks",
    },
    jobs=jobs.JOBS,
    events={"webhook.test": "Sent by POST /api/v1/webhooks/{id}/test"},
)
