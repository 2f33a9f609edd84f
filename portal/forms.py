"""Forms of the portal app: the audit trail's filters."""
from django import forms


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=64, label="Action starts with")
    actor = forms.CharField(required=False, max_length=200)
    tenant_id = forms.CharField(required=False, max_length=64, label="Tenant id")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Until (exclusive)")
