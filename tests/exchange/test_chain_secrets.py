"""No token is left anywhere: not in the database, not in the logs; only non-secret claims are kept."""
import logging
import re

from django.apps import apps
from django.core import serializers

from emulator import world as demo
from exchange import chain

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}")


def test_no_token_is_stored_or_logged(run_for, portal_on_emulator, caplog):
    caplog.set_level(logging.DEBUG)
    run_for(demo.FABRIKAM)
    run_for(demo.NORTHWIND)
    dump = "".join(serializers.serialize("json", model.objects.all()) for model in apps.get_models())
    assert "Fabrikam Production" in dump  # the probe's findings are there...
    assert not JWT.search(dump)  # ...but no token
    assert caplog.records and not JWT.search(caplog.text)


def test_redact_keeps_only_the_non_secret_claims_and_survives_garbage():
    import jwt

    token = jwt.encode({"iss": "https://sts.windows.net/t/", "aud": "https://management.azure.com/", "roles": ["R"],
                        "exp": 5, "xms_cc": ["cp1"], "uti": "u"}, "k" * 32, algorithm="HS256")
    assert chain.redact(token) == {"iss": "https://sts.windows.net/t/", "aud": "https://management.azure.com/",
                                   "roles": ["R"], "exp": 5}
    for garbage in ("", "not-a-jwt", "a.!!!.c", "a.W10.c", "a.bm90IGpzb24.c"):  # W10 = "[]", the last "not json"
        assert chain.redact(garbage) == {}
