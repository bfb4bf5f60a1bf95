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
)
