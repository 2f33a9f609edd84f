from django.urls import path

from exchange import estop_views, profile_views, views

app_name = "exchange"
urlpatterns = [
    path("identities/", views.identities, name="identities"),
    path("identities/apps/new/", views.homeapp_form, name="homeapp-create"),
    path("identities/apps/<int:pk>/", views.homeapp_form, name="homeapp-edit"),
    path("identities/apps/<int:pk>/sync/", views.homeapp_sync, name="homeapp-sync"),
    path("identities/identities/new/", views.identity_form, name="identity-create"),
    path("identities/identities/<int:pk>/", views.identity_form, name="identity-edit"),
    path("identities/apps/<int:app_pk>/fics/new/<int:identity_pk>/", views.fic_create, name="fic-create"),
    path("identities/fics/<int:pk>/delete/", views.fic_delete, name="fic-delete"),
    path("access-profiles/", profile_views.access_profile_list, name="access-profiles"),
    path("access-profiles/new/", profile_views.access_profile_form, name="access-profile-create"),
    path("access-profiles/<int:pk>/", profile_views.access_profile_form, name="access-profile-edit"),
    path("token-tests/", views.tokentest_list, name="tokentest-list"),
    path("token-tests/<int:pk>/", views.tokentest_detail, name="tokentest-detail"),
    path("sweeps/", views.sweep_list, name="sweep-list"),
    path("sweeps/<int:pk>/", views.sweep_detail, name="sweep-detail"),
    path("emergency-stop/", estop_views.estop_page, name="estop"),
    path("emergency-stop/engage/", estop_views.estop_engage, name="estop-engage"),
    path("emergency-stop/restart/<slug:step>/", estop_views.estop_step, name="estop-step"),
    path("emergency-stop/<int:pk>/", estop_views.estop_detail, name="estop-detail"),
]
