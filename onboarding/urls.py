from django.urls import path

from onboarding import views

app_name = "onboarding"
urlpatterns = [
    path("customers/", views.customer_list, name="customer-list"),
]
