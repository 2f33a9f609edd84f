from django.urls import path

from signin import views

app_name = "signin"
urlpatterns = [
    path("signin/start/", views.start, name="start"),
    path("signin/callback/", views.callback, name="callback"),
]
