"""manage.py identity_provider_add NAME --issuer URL --audience AUD --subject SUB --role ROLE [...] (audited)."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.models import IdentityProvider
from api.services import identity_provider_create
from portal.roles import ROLES
from portal.services import Actor


class Command(BaseCommand):
    help = "Trust a workload platform's tokens: register an identity provider of the automation API."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--issuer", required=True, help="exactly the tokens' iss")
        parser.add_argument("--audience", required=True)
        parser.add_argument("--subject", required=True, help="exactly the tokens' sub")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--kind", default="oidc", choices=IdentityProvider.Kind.values)
        parser.add_argument("--claim", default="", help="NAME=VALUE: another claim that must match exactly")
        parser.add_argument("--session-seconds", type=int, default=900)
        parser.add_argument("--description", default="")

    def handle(self, *args, **options):
        claim_name, _, claim_value = options["claim"].partition("=")
        try:
            provider = identity_provider_create(
                actor=Actor.system("manage.py"), name=options["name"], issuer_url=options["issuer"],
                audience=options["audience"], subject=options["subject"], role=options["role"],
                kind=options["kind"], claim_name=claim_name, claim_value=claim_value,
                session_seconds=options["session_seconds"], description=options["description"])
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(f"Identity provider {provider.name} (#{provider.pk}) trusts {provider.issuer_url} "
                          f"sub={provider.subject} aud={provider.audience} as {provider.role}.")
