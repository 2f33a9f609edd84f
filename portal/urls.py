"""Root URLs: the portal shell, staff auth, and each app under its namespace (included by name: no import)."""
from django.contrib import admin
from django.urls import include, path

from portal import views

portal_patterns = (
    [
        path("login/", views.LoginView.as_view(), name="login"),
        path("logout/", views.LogoutView.as_view(), name="logout"),
        path("login-locks/", views.login_locks, name="login-locks"),
        path("audit/", views.audit_list, name="audit-list"),
        path("audit/verify/", views.audit_verify, name="audit-verify"),
        path("audit/verify/<int:pk>/", views.audit_verify_run, name="audit-verify-run"),
    ],
    "portal",
)

urlpatterns = [
    path("", include(portal_patterns)),
    path("", include("console.urls")),
    path("", include("onboarding.urls")),
    path("", include("exchange.urls")),
    path("", include("signin.urls")),
    path("", include("api.urls")),
    path("", include("ops.urls")),
    path("django-admin/", admin.site.urls),
]

handler403 = "portal.views.error_403"
handler404 = "portal.views.error_404"
handler500 = "portal.views.error_500"
