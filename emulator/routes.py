"""Which service answers a request: the endpoint kind (what the request log counts and faults are configured for) and
the dispatch to that service's module. The services never import this module, nor the server."""
from emulator import arm, control_api, graph, imds, login, workload
from emulator.protocol import Response


def classify(method: str, path: str) -> str:
    """The endpoint kind a request counts under (and that faults are configured for)."""
    if path.startswith("/_emulator/"):
        return "control"
    if path.startswith("/metadata/identity"):
        return "imds"
    if path.startswith("/v1.0/") or path.startswith("/beta/"):
        return "graph"
    if path.startswith("/subscriptions") or path.startswith("/providers"):
        return "arm"
    if path.startswith("/_issuers/"):
        return "oidc_issuer"
    if path.endswith("/oauth2/v2.0/token") or path.endswith("/oauth2/token"):
        return "token"
    if "adminconsent" in path:
        return "consent"
    if "openid-configuration" in path or "/discovery/" in path:
        return "discovery"
    return "other"


def route(emu, method: str, path: str, query: dict, body: bytes, headers, kind: str) -> Response:
    if kind == "control":
        return control_api.handle(emu, method, path, body)
    if kind == "imds":
        return imds.token(emu, query, headers)
    if kind == "graph":
        return graph.handle(emu, method, path, body, headers)
    if kind == "arm":
        return arm.get(emu, path, query, headers)
    if kind == "oidc_issuer":
        return workload.issuer_document(emu, path)
    return login.route(emu, method, path, query, body)  # token, consent, discovery and the rest of the login host
