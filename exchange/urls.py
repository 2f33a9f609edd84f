from django.urls import path

from exchange import views

app_name = "exchange"
urlpatterns = [
    path("identities/", views.identities, name="identities"),
    path("token-tests/", views.tokentest_list, name="tokentest-list"),
    path("token-tests/<int:pk>/", views.tokentest_detail, name="tokentest-detail"),
    path("tenants/<int:pk>/test-now/", views.tenant_test_now, name="tenant-test-now"),
    path("sweeps/start/", views.sweep_start, name="sweep-start"),
    path("sweeps/<int:pk>/", views.sweep_detail, name="sweep-detail"),
]
