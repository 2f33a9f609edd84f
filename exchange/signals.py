"""Signals exchange sends; the apps above it connect receivers (exchange imports none of them)."""
import django.dispatch

# Sent inside the transaction that records token-test outcomes, once per outcome group:
# tenants_tested.send(sender=TokenTest, tenant_pks=[...], outcome=<a TokenTest.Outcome value>, at=<datetime>).
tenants_tested = django.dispatch.Signal()
