"""Forms of exchange: home apps and managed identities (validated GUIDs, cloud, tenant)."""
from django import forms

from exchange.models import HomeApp, ManagedIdentity


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
