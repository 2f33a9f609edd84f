"""Clouds, home apps and managed identities, the FIC inventory and its lint, the exchange chain and token tests."""
