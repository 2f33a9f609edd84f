"""Settings for the onboarding portal, read from the environment with embedded defaults (SQLite, a filesystem
broker): Django's and the infrastructure's in framework.py, the product's own in product.py. `.env.example` lists every
variable with its default."""
from portal.settings.framework import *  # noqa: F403
from portal.settings.product import *  # noqa: F403
