"""Forms of exchange: home apps and managed identities (validated GUIDs, cloud, tenant)."""
from django import forms

from exchange.clouds import is_guid
from exchange.models import HomeApp, ManagedIdentity

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
