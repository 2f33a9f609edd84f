from django.urls import path

from onboarding import customer_views, picker, tenant_views, views

app_name = "onboarding"
urlpatterns = [
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/new/", views.customer_create, name="customer-create"),
    path("customers/import/", views.bulk_import, name="bulk-import"),
    path("customers/<int:pk>/", views.customer_detail, name="customer-detail"),
    path("customers/<int:pk>/access-profile/", views.customer_access_profile, name="customer-access-profile"),
    path("customers/<int:pk>/tenants/add/", views.tenant_add, name="tenant-add"),
    path("customers/<int:pk>/edit/", customer_views.customer_edit, name="customer-edit"),
    path("customers/<int:pk>/archive/", customer_views.customer_archive, name="customer-archive"),
    path("customers/<int:pk>/unarchive/", customer_views.customer_unarchive, name="customer-unarchive"),
    path("tenants/", tenant_views.tenant_list, name="tenant-list"),
    path("tenants/export.csv", tenant_views.tenant_export, name="tenant-export"),
    path("tenants/bulk/", tenant_views.tenant_bulk, name="tenant-bulk"),
    path("tenants/<int:pk>/", views.tenant_detail, name="tenant-detail"),
    path("tenants/picker/", picker.tenant_picker, name="tenant-picker"),
    path("tenants/<int:pk>/consent-link/", views.consent_link_issue, name="consent-link-issue"),
    path("tenants/<int:pk>/offboard/", views.tenant_offboard, name="tenant-offboard"),
    path("tenants/<int:pk>/test-now/", views.tenant_test_now, name="tenant-test-now"),
    path("sweeps/start/", views.sweep_start, name="sweep-start"),
    # Public: where Microsoft sends the customer's admin after consent (registered on the app as redirect URI).
    path("consent/callback/", views.consent_callback, name="consent-callback"),
    path("consent/progress/<str:token>/", views.consent_progress, name="consent-progress"),
]
