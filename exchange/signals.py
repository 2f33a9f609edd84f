"""Signals exchange sends: what happened to token tests, for the apps above it (onboarding keeps tenant health)."""
import django.dispatch

# Sent inside the transaction that records the outcomes, once per outcome group:
#   tenants_tested.send(sender=TokenTest, tenant_pks=[...], outcome=<a TokenTest.Outcome value>, at=<datetime>)
# An outage of Microsoft's is not held against the tenant: "transient" and "propagating" say nothing about it, and its
# receiver (onboarding.receivers) records them as the tenant's last check only.
tenants_tested = django.dispatch.Signal()
