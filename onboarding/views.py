"""Views of onboarding: customers and tenants (staff), the consent landing page (public)."""
from django.shortcuts import render

from portal.roles import staff_required


@staff_required("view")
def customer_list(request):
    return render(request, "onboarding/customer_list.html", {"customers": []})
