"""Page or fragment: the one place that decides whether an htmx request gets a fragment of a page or the page itself.

django-htmx's guidance: answer with a fragment only to an htmx request that is not restoring history (on a history
cache miss htmx sends HX-Request too, and wants the whole page), and say `Vary: HX-Request` so that no cache hands the
fragment to a plain request of the same URL or the page to an htmx one.
"""
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseStopPolling


def wants_fragment(request, target: str | None = None) -> bool:
    """An htmx request that asks for a fragment (of `target`, when given): not a history restore."""
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.history_restore_request:
        return False
    return target is None or htmx.target == target


def render_page(request, template: str, context: dict, *, fragment: str | None = None, target: str | None = None,
                stop_polling: bool = False, status: int = 200):
    """The page `template`, or its partial `fragment` for an htmx request (aimed at `target`, when given).

    stop_polling: the fragment is the last one of a polled region (the job it shows has ended): answer 286, which
    tells htmx to stop polling."""
    if fragment and wants_fragment(request, target):
        response = render(request, f"{template}#{fragment}", context, status=status)
        if stop_polling:
            response = HttpResponseStopPolling(response.content)
    else:
        response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response
