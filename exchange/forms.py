"""Forms of exchange: home apps and managed identities (validated GUIDs, cloud, tenant), the token tests' filters."""
from django import forms

from exchange.diagnosis import CATALOGUE
from exchange.models import AccessProfile, HomeApp, ManagedIdentity, TokenTest
from exchange.profiles import grants_format, grants_parse
from portal.dates import date_range

# The diagnosis catalogue's codes (and the outage a held test ends with), by code: the filter matches one exactly.
DIAGNOSIS_CHOICES = [("", "Any diagnosis"), *sorted((code, f"{code} · {d.title}") for code, d in CATALOGUE.items()),
                     ("outage", "outage · Endpoint outage")]


class TokenTestFilterForm(forms.Form):
    tenant = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)  # a tenant's pk (the picker's)
    sweep = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)  # a sweep's pk (its page links)
    outcome = forms.ChoiceField(choices=[("", "Any outcome"), *TokenTest.Outcome.choices], required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *TokenTest.Status.choices], required=False)
    code = forms.ChoiceField(choices=DIAGNOSIS_CHOICES, required=False, label="Diagnosis", error_messages={
        "invalid_choice": "%(value)s is not a diagnosis of the catalogue: to list unrecognised errors, choose the "
                          "outcome \u201cUnrecognised error\u201d."})
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Until")

    def filters(self) -> dict:
        """The selector's keyword arguments for a valid form."""
        data = self.cleaned_data
        return {"outcome": data["outcome"], "diagnosis": data["code"], "status": data["status"],
                "tenant_id": data["tenant"], "sweep_id": data["sweep"], **date_range(since=data["since"], until=data["until"])}


class HomeAppForm(forms.ModelForm):
    class Meta:
        model = HomeApp
        fields = ["name", "client_id", "home_tenant_id", "cloud", "consent_version", "probe_resource_id",
                  "verify_home_token", "mi_audience"]


class ManagedIdentityForm(forms.ModelForm):
    class Meta:
        model = ManagedIdentity
        fields = ["name", "client_id", "principal_id", "tenant_id", "cloud", "resource_id", "in_use"]

    def clean_resource_id(self):
        value = self.cleaned_data["resource_id"].strip()
        if value and "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" not in value:
            raise forms.ValidationError("A user-assigned identity's resource id ends with "
                                        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME. "
                                        "(System-assigned identities cannot be trusted by a federated credential.)")
        return value


class AccessProfileForm(forms.ModelForm):
    grants_text = forms.CharField(
        label="Roles and scopes", widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One a line: ROLE on SCOPE. SCOPE is “every subscription” (each one the app can see) or an ARM "
                  "resource id, e.g. “Monitoring Metrics Publisher on /subscriptions/…/resourceGroups/…/providers/"
                  "Microsoft.Insights/dataCollectionRules/…”. Role names as in Azure (Reader, Contributor…).")

    class Meta:
        model = AccessProfile
        fields = ["name", "description", "is_default"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    field_order = ["name", "grants_text", "description", "is_default"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["grants_text"].initial = grants_format(self.instance.grants)

    def _get_validation_exclusions(self):
        # The services move the default from one profile to another: the one-default constraint is theirs to keep.
        return {*super()._get_validation_exclusions(), "is_default"}

    def clean_grants_text(self):
        grants = grants_parse(self.cleaned_data["grants_text"])
        self.instance.grants = grants  # the model's own validation (clean) reads them
        return grants

    def fields_to_save(self) -> dict:
        data = dict(self.cleaned_data)
        data["grants"] = data.pop("grants_text")
        return data
