"""Forms of the portal app: the audit trail's filters, the staff sign-in, unlocking a sign-in."""
from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from portal.dates import date_range


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=64, label="Action starts with")
    actor = forms.CharField(required=False, max_length=200)
    tenant_id = forms.CharField(required=False, max_length=64, label="Tenant id")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Until (exclusive)")

    def filters(self) -> dict:
        """The selector's keyword arguments for a valid form (portal.selectors.audit_events)."""
        data = self.cleaned_data
        return {"action": data["action"], "actor": data["actor"], "tenant_id": data["tenant_id"].strip(),
                **date_range(since=data["since"], until=data["until"])}


class LoginForm(AuthenticationForm):
    """The password sign-in; a locked account or address (portal.throttle) is refused with its own message."""

    error_messages = {**AuthenticationForm.error_messages,
                      "invalid_login": "Your username and password didn't match. Please try again."}
    lock = None

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            self.lock = getattr(self.request, "login_lock", None)
            if self.lock is None:
                raise
            raise ValidationError(self.lock.message, code="locked") from None


class LoginUnlockForm(forms.Form):
    target = forms.CharField(max_length=150, label="Username or IP address",
                             widget=forms.TextInput(attrs={"placeholder": "ada or 203.0.113.9"}))
