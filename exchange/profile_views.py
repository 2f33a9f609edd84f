"""Views of access profiles (admins): the list, and a page to create or edit one. Writes go through services."""
import copy

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect

from exchange import selectors, services
from exchange.forms import AccessProfileForm
from exchange.models import AccessProfile
from portal.htmx import render_page
from portal.roles import staff_required
from portal.services import Actor


@staff_required("view")
def access_profile_list(request):
    return render_page(request, "exchange/access_profiles.html", {"profiles": selectors.access_profiles()})


@staff_required("administer")
def access_profile_form(request, pk=None):
    instance = get_object_or_404(AccessProfile, pk=pk) if pk else None
    form = AccessProfileForm(request.POST or None, instance=copy.copy(instance))
    if request.method == "POST" and form.is_valid():
        actor = Actor.staff(request.user)
        fields = form.fields_to_save()
        if instance is None:
            instance = services.access_profile_create(actor=actor, **fields)
        else:
            services.access_profile_update(profile=instance, actor=actor, **fields)
        messages.success(request, f"Access profile “{instance}” saved.")
        return redirect("exchange:access-profiles")
    return render_page(request, "exchange/access_profile_form.html",
                       {"form": form, "title": f"Edit {instance}" if instance else "New access profile"},
                       status=400 if form.errors else 200)
