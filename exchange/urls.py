from django.urls import path

from exchange import views

app_name = "exchange"
urlpatterns = [
    path("identities/", views.identities, name="identities"),
    path("token-tests/", views.tokentest_list, name="tokentest-list"),
]
