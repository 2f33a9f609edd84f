"""Forms of onboarding: customers, adding a tenant by domain or id, bulk import."""
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from exchange.clouds import CLOUD_CHOICES
from exchange.models import HomeApp
from onboarding.bulk_actions import BulkAction
from onboarding.models import Customer, CustomerTenant
from onboarding.tags import tags_parse
from onboarding.tenant_selectors import DEFAULT_SORT, SORTS, TenantFilters
from portal.widgets import QuickSelect


class TagsField(forms.CharField):
    """Tag names typed as text ("tier-1, eu"): cleaned to a sorted list of valid names."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Optional: tags such as tier-1, eu, pilot (commas or spaces between them). "
                                       "They filter the lists, scope sweeps and route alerts.")
        super().__init__(required=False, max_length=1000, **kwargs)

    def clean(self, value):
        return tags_parse(super().clean(value))

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

DEFAULT_PROFILE_LABEL = "The default profile"


class CustomerForm(forms.ModelForm):
    tags = TagsField()

    class Meta:
        model = Customer
        fields = ["name", "contact_name", "contact_email", "notes", "access_profile"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = list(self.instance.tags.values_list("name", flat=True))
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
    tags = TagsField()


class BulkImportForm(HomeAppChoiceForm):
    field_order = ["file", "home_app"]
    # An empty file is the service's to refuse (and audit), like any other refused file.
    file = forms.FileField(allow_empty_file=True, help_text=(
        f"CSV with a header row: customer,domain_or_tenant_id and optionally cloud (global, usgov, china…) and "
        f"tags (separated by spaces or semicolons) (at most {settings.BULK_IMPORT_MAX_ROWS} rows, "
        f"{settings.BULK_IMPORT_MAX_BYTES // 1024:,} KiB). The whole file is checked before anything is created."))


class TenantFilterForm(forms.Form):
    """The tenants page's GET parameters; a value that is not offered is ignored (the list shows unfiltered)."""

    q = forms.CharField(required=False, max_length=100, label="Search",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "domain, name, tenant id, customer"}))
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *CustomerTenant.Status.choices],
                               widget=QuickSelect)
    customer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, widget=QuickSelect)
    cloud = forms.ChoiceField(required=False, choices=[("", "Any cloud"), *CLOUD_CHOICES], widget=QuickSelect)
    region = forms.ChoiceField(required=False, widget=QuickSelect)
    tag = forms.ChoiceField(required=False, widget=QuickSelect)
    sort = forms.ChoiceField(required=False, choices=[
        choice for key, (label, _) in SORTS.items() for choice in ((key, label), (f"-{key}", f"{label} (descending)"))])
    archived = forms.BooleanField(required=False, label="Include archived customers")

    def __init__(self, data, *, choices: dict):
        super().__init__(data)
        self.fields["customer"].choices = [("", "Any customer"), *choices["customers"]]
        self.customers_many = choices.get("customers_many", False)  # only the chosen customer is listed
        self.fields["region"].choices = [("", "Any region"), *((r, r) for r in choices["regions"])]
        self.fields["tag"].choices = [("", "Any tag"), *((t, t) for t in choices["tags"])]

    def filters(self) -> TenantFilters:
        """The valid parameters as filters (each invalid one dropped, not the whole form)."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}
        data.setdefault("sort", DEFAULT_SORT)
        return TenantFilters(**data)


class TenantBulkForm(forms.Form):
    action = forms.ChoiceField(choices=BulkAction.choices)
    tenants = forms.TypedMultipleChoiceField(coerce=int, error_messages={"required": "Select at least one tenant."})
    tag = forms.CharField(required=False, max_length=64)
    confirmed = forms.BooleanField(required=False)

    def __init__(self, data):
        super().__init__(data)
        # Any tenant id may be posted; the service finds them (a tenant that no longer exists is simply absent).
        self.fields["tenants"].valid_value = lambda value: str(value).isdigit()

    def clean_tag(self):
        tag = self.cleaned_data["tag"].strip().lower()
        if self.cleaned_data.get("action") in (BulkAction.TAG_ADD, BulkAction.TAG_REMOVE):
            names = tags_parse(tag)
            if len(names) != 1:
                raise ValidationError("Name one tag to add or remove.")
            return names[0]
        return tag
