"""Customers, their tenants, consent links, the public consent landing page and the onboarding timeline."""
