"""Views of the emergency stop: its page (state, restart stages with their results, history), the confirmation that
engages it, and the restart's steps. They translate HTTP: exchange.services.estop does the work."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from exchange.forms import CanaryForm, EmergencyStopForm
from exchange.models import EmergencyStop
from exchange.services import estop as service
from exchange.services.estop_guard import EmergencyStopped, canary_candidates
from portal.htmx import render_page
from portal.roles import staff_required
from portal.services import Actor

PAST_STOPS = 10


@staff_required("view")
def estop_page(request):
    stop = EmergencyStop.objects.select_related("canary_test", "engaged_by").filter(current=True).first()
    canary = stop.canary_test if stop else None
    context = {"stop": stop, "canary": canary, "stage": EmergencyStop.Stage,
               "past": EmergencyStop.objects.filter(current=None)[:PAST_STOPS],
               "canary_form": CanaryForm(candidates=canary_candidates()) if stop else None}
    return render_page(request, "exchange/estop.html", context, fragment="canary",
                       stop_polling=canary is None or canary.finished)


@staff_required("administer")
def estop_engage(request):
    if EmergencyStop.objects.filter(current=True).exists():
        messages.info(request, "An emergency stop is already in force.")
        return redirect("exchange:estop")
    form = EmergencyStopForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            stop = service.estop_engage(reason=form.cleaned_data["reason"], actor=Actor.staff(request.user),
                                        user=request.user, delete_fics=form.cleaned_data["delete_fics"])
        except ValidationError as exc:
            form.add_error(None, exc)
        except EmergencyStopped as exc:
            messages.error(request, str(exc))
            return redirect("exchange:estop")
        else:
            deleted = f" {stop.history[-1]['summary']}" if form.cleaned_data["delete_fics"] else ""
            messages.warning(request, f"Emergency stop engaged: token tests held, sweeps refused.{deleted}")
            return redirect("exchange:estop")
    return render_page(request, "exchange/estop_confirm.html", {"form": form}, status=400 if form.errors else 200)


STEPS = {"canary": "Stage 1 run", "tests": "Token tests resumed", "sweeps": "Sweeps resumed: the stop is over",
         "abort": "Restart aborted: back to stopped"}


@staff_required("administer")
@require_POST
def estop_step(request, step):
    if step not in STEPS:
        return redirect("exchange:estop")
    actor = Actor.staff(request.user)
    try:
        if step == "canary":
            form = CanaryForm(request.POST, candidates=canary_candidates())
            if not form.is_valid():
                raise EmergencyStopped("Choose the canary among the tenants offered.")
            stop = service.estop_restart_canary(actor=actor, user=request.user,
                                                canary_tenant_pk=form.cleaned_data["canary"])
        else:
            stop = {"tests": service.estop_restart_tests, "sweeps": service.estop_restart_sweeps,
                    "abort": service.estop_abort}[step](actor=actor)
    except EmergencyStopped as exc:
        messages.error(request, str(exc))
    else:
        last = stop.history[-1]
        (messages.success if last["ok"] else messages.error)(request, f"{STEPS[step]}: {last['summary']}")
    return redirect("exchange:estop")


@staff_required("view")
def estop_detail(request, pk):
    stop = get_object_or_404(EmergencyStop.objects.select_related("canary_test"), pk=pk)
    return render_page(request, "exchange/estop.html", {"stop": stop, "canary": stop.canary_test, "past": [],
                                                        "stage": EmergencyStop.Stage, "canary_form": None})
