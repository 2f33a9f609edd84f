"""The API's routes, one module per subject: thin, each a role check (guarded), the same services and selectors the
pages use, and a body shaped by api/schemas.py. Importing this package registers them on the API."""
from api.api import api
from api.routes import audit, customers, token_tests, trust

api.add_router("/sts", trust.sts_router)
api.add_router("", trust.trust)
api.add_router("", customers.onboarding)
api.add_router("", token_tests.exchange)
api.add_router("", audit.audit)
