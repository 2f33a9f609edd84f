"""Forms of onboarding: customers, adding a tenant by domain or id, bulk import."""
from django import forms
from django.conf import settings

from exchange.clouds import CLOUD_CHOICES
from exchange.models import HomeApp
from onboarding.models import Customer

DEFAULT_PROFILE_LABEL = "The default profile"


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ["name", "contact_name", "contact_email", "notes", "access_profile"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["access_profile"].empty_label = DEFAULT_PROFILE_LABEL


class CustomerAccessProfileForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ["access_profile"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["access_profile"].empty_label = DEFAULT_PROFILE_LABEL


class HomeAppChoiceForm(forms.Form):
    """A form with a `home_app` choice, preset when there is only one home app."""

    home_app = forms.ModelChoiceField(queryset=HomeApp.objects.all(), label="Home app")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        apps = list(HomeApp.objects.all()[:2])
        if len(apps) == 1:
            self.fields["home_app"].initial = apps[0]


class TenantAddForm(HomeAppChoiceForm):
    field_order = ["domain_or_id", "home_app", "cloud"]
    domain_or_id = forms.CharField(
        label="Domain or tenant id", max_length=255,
        help_text="A verified domain of the customer's tenant (e.g. fabrikam.com) — or its tenant id if you have it.",
        widget=forms.TextInput(attrs={"placeholder": "fabrikam.com"}))
    cloud = forms.ChoiceField(choices=[("", "Same as the home app"), *CLOUD_CHOICES], required=False)


class BulkImportForm(HomeAppChoiceForm):
    field_order = ["file", "home_app"]
    # An empty file is the service's to refuse (and audit), like any other refused file.
    file = forms.FileField(allow_empty_file=True, help_text=(
        f"CSV with a header row: customer,domain_or_tenant_id (at most {settings.BULK_IMPORT_MAX_ROWS} rows, "
        f"{settings.BULK_IMPORT_MAX_BYTES // 1024:,} KiB). The whole file is checked before anything is created."))
