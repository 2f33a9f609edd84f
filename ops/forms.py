from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from onboarding.models import Customer, Tag
from onboarding.tenant_selectors import CUSTOMER_CHOICES_MAX
from ops.models import AlertKind, Channel
from ops.services import webhook_url_check
from portal.widgets import QuickSelect


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=Channel.Kind.choices)
    addresses = forms.CharField(required=False, max_length=2000, help_text="E-mail: addresses, comma-separated.")
    url = forms.URLField(required=False, max_length=600, assume_scheme="https",
                         help_text="Webhook: the endpoint (https).")
    format = forms.ChoiceField(choices=Channel.Format.choices, initial=Channel.Format.GENERIC)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Channel.objects.filter(name=name).exists():
            raise ValidationError("A channel of that name exists.")
        return name

    def clean(self):
        data = super().clean()
        if data.get("kind") == Channel.Kind.EMAIL:
            addresses = [a.strip() for a in (data.get("addresses") or "").replace(";", ",").split(",") if a.strip()]
            if not addresses:
                self.add_error("addresses", "Give at least one e-mail address.")
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    self.add_error("addresses", f"“{address[:80]}” is not an e-mail address.")
            data["addresses"] = addresses
        elif data.get("kind") == Channel.Kind.WEBHOOK:
            if not data.get("url"):
                self.add_error("url", "Give the webhook's URL.")
            else:
                try:
                    webhook_url_check(data["url"])
                except ValidationError as exc:
                    self.add_error("url", exc)
        return data


# Past this many customers a route names its customer instead of listing them all (the tenants page's rule too).
CUSTOMERS_LISTED_MAX = CUSTOMER_CHOICES_MAX


class RouteForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=Channel.objects.all())
    customer = forms.ModelChoiceField(queryset=Customer.objects.only("pk", "name"), required=False, widget=QuickSelect,
                                      empty_label="All customers (and outages, findings, digest)")
    tag = forms.ModelChoiceField(queryset=Tag.objects.all(), to_field_name="name", required=False,
                                 empty_label="Any tag", help_text="Only the alerts of tenants (or customers) carrying "
                                                                  "this tag; a tenant carries its customer's tags too.")
    kinds = forms.MultipleChoiceField(choices=AlertKind.choices, required=False,
                                      widget=forms.CheckboxSelectMultiple, help_text="None ticked: every kind.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if Customer.objects.count() > CUSTOMERS_LISTED_MAX:  # a name typed, not thousands of options rendered
            field = self.fields["customer"]
            field.to_field_name, field.widget = "name", forms.TextInput(attrs={"placeholder": "All customers"})
            field.help_text = "The customer's exact name, as on the customers page; empty: all customers."
