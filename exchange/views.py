"""Views of exchange: identities and credentials, token tests and sweeps."""
from django.shortcuts import render

from portal.roles import staff_required


@staff_required("view")
def identities(request):
    return render(request, "exchange/identities.html", {})


@staff_required("view")
def tokentest_list(request):
    return render(request, "exchange/tokentest_list.html", {})
