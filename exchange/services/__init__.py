"""Writes of exchange, by subject: token tests (tokentests, leases, outcomes, reaper), sweeps, the registry of home
apps and identities, the FIC inventory, the retention of old tests' steps. This module is their public face: callers
outside exchange import from here."""
from exchange.services.inventory import InventoryError, fic_body_for, fic_create, fic_delete, fic_inventory_sync
from exchange.services.outcomes import Execution, token_test_finish
from exchange.services.reaper import token_tests_reap
from exchange.services.registry import (
    home_app_create,
    home_app_update,
    managed_identity_create,
    managed_identity_update,
    model_update,
)
from exchange.services.retention import token_test_steps_prune
from exchange.services.sweeps import sweep_start
from exchange.services.tokentests import (
    token_test_execute,
    token_test_start,
    token_tests_execute,
    token_tests_execute_and_requeue,
)

__all__ = [
    "Execution", "InventoryError", "fic_body_for", "fic_create", "fic_delete", "fic_inventory_sync",
    "home_app_create", "home_app_update", "managed_identity_create", "managed_identity_update", "model_update",
    "sweep_start", "token_test_execute", "token_test_finish", "token_test_start", "token_tests_execute",
    "token_tests_execute_and_requeue", "token_tests_reap", "token_test_steps_prune",
]
