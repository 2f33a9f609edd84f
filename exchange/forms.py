"""Forms of exchange: home apps and managed identities (validated GUIDs, cloud, tenant), the token tests' filters."""
from django import forms

from exchange.clouds import is_guid
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


GUID_FORM = "8-4-4-4-12 hexadecimal digits, e.g. 5c4e8a1f-2b3d-4c6e-8f0a-1b2c3d4e5f60"


class HomeAppForm(forms.ModelForm):
    class Meta:
        model = HomeApp
        fields = ["name", "client_id", "home_tenant_id", "cloud", "consent_version", "probe_resource_id",
                  "verify_home_token", "mi_audience"]


class ManagedIdentityForm(forms.ModelForm):
    class Meta:
        model = ManagedIdentity
        fields = ["name", "client_id", "principal_id", "tenant_id", "cloud", "resource_id", "in_use"]

    def _guid(self, name: str, where: str):
        """The id as Entra writes it (exchange.clouds.is_guid), and not the nil GUID: no identity has that."""
        raw = str(self.data.get(self.add_prefix(name), "")).strip()
        value = self.cleaned_data[name]
        if not is_guid(raw) or value.int == 0:
            raise forms.ValidationError(f"Not an id Entra gives ({GUID_FORM}): copy it from {where}.")
        return value

    def clean_client_id(self):
        return self._guid("client_id", "the identity's Overview page (Client ID)")

    def clean_principal_id(self):
        return self._guid("principal_id", "the identity's Overview page (Object (principal) ID)")

    def clean_tenant_id(self):
        return self._guid("tenant_id", "Microsoft Entra ID → Overview (Tenant ID)")

    def clean(self):
        data = super().clean()
        if data.get("client_id") and data.get("client_id") == data.get("principal_id"):
            self.add_error("principal_id", "The principal (object) id is not the client id: the Overview page shows "
                                           "both; a FIC's subject is the principal id.")
        return data

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
class EmergencyStopForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Shown on every staff page while the stop is on, and kept in the audit trail.")
    delete_fics = forms.BooleanField(
        required=False, label="Also delete every federated credential (FIC) of the home apps through Graph",
        help_text="Graph has no way to disable a FIC: it is deleted, and its name, issuer, subject and audiences are "
                  "kept so that the restart re-creates it. Tokens Entra already issued stay valid until they expire.")
    confirm = forms.BooleanField(label="I understand: every token test and sweep stops now, for every customer")


class CanaryForm(forms.Form):
    canary = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Canary tenant",
                                    help_text="Its token test is the only one that runs until stage 2; it proves the "
                                              "FIC in the home tenant too when the app verifies it.")

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["canary"].choices = [("", "No canary test (only re-create the FICs)"), *candidates]
