"""Views of a customer's lifecycle after onboarding: edit (name, contact, notes, tags), archive (after a confirmation
listing the tenants it offboards) and unarchive."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from onboarding import services
from onboarding.forms import CustomerForm
from onboarding.models import Customer
from portal.roles import staff_required
from portal.services import Actor


@staff_required("operate")
def customer_edit(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    form = CustomerForm(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in (*services.CUSTOMER_EDITABLE, "access_profile")}
        try:
            _, changed = services.customer_update(customer=Customer.objects.get(pk=pk), data=data,
                                                  tags=form.cleaned_data["tags"], actor=Actor.staff(request.user))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved: {', '.join(changed)}." if changed else "Nothing changed.")
            return redirect("onboarding:customer-detail", pk=pk)
    return render(request, "onboarding/customer_form.html", {"form": form, "customer": customer},
                  status=400 if form.errors else 200)


@staff_required("operate")
def customer_archive(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    if request.method == "POST":
        try:
            offboarded = services.customer_archive(customer=customer, actor=Actor.staff(request.user))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{customer} is archived" + (
                f"; {len(offboarded)} tenants offboarded." if offboarded else "."))
        return redirect("onboarding:customer-detail", pk=pk)
    return render(request, "onboarding/customer_archive.html", {
        "customer": customer, "active": customer.tenants.filter(offboarded_at=None).order_by("primary_domain")})


@staff_required("operate")
@require_POST
def customer_unarchive(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    try:
        services.customer_unarchive(customer=customer, actor=Actor.staff(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{customer} is back in the lists; its tenants stay offboarded.")
    return redirect("onboarding:customer-detail", pk=pk)
