from django.urls import path

from ops import export_views, views

app_name = "ops"
urlpatterns = [
    path("alerts/", views.alert_list, name="alert-list"),
    path("alerts/settings/", views.alert_settings, name="alert-settings"),
    path("alerts/channels/new/", views.channel_create, name="channel-create"),
    path("alerts/channels/<int:pk>/delete/", views.channel_delete, name="channel-delete"),
    path("alerts/routes/new/", views.route_create, name="route-create"),
    path("alerts/routes/<int:pk>/delete/", views.route_delete, name="route-delete"),
    path("exports/", export_views.export_list, name="export-list"),
    path("exports/start/<str:kind>/", export_views.export_start, name="export-start"),
    path("exports/<int:pk>/", export_views.export_detail, name="export-detail"),
    path("exports/<int:pk>/download/", export_views.export_download, name="export-download"),
]
