from kefu.customers import jobs
from kefu.customers.api import blp
from kefu.modules import ModuleDescriptor

MODULE = ModuleDescriptor(
    name="customers",
    title="Customer profiles",
    blueprint=blp,
    permissions={
        "customers.view": "See customer profiles (contact details masked)",
        "customers.view_pii": "See unmasked phone numbers, emails and addresses",
        "customers.edit": "Create, update and delete customer profiles",
        "customers.merge": "Merge duplicate customer profiles",
        "customers.export": "Export customer profiles to CSV",
    },
    jobs=(jobs.export_customers_csv,),
    default_settings={},
    events={
        "customer.created": "A customer profile was created. data: the profile",
        "customer.updated": "A profile changed. data: the profile and `changed` (field names)",
        "customer.deleted": "A profile was deleted. data: the profile as it was",
        "customer.merged": "A duplicate was merged in. data: the target and `merged_id`",
    },
)
