"""Saved presets, for the Playground's picker (JSON: the picker applies them in the page)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods, require_POST

from playground.catalog.forms import SamplingForm
from playground.presets import services
from playground.presets.forms import PresetForm
from playground.presets.selectors import preset_list


@login_required
@require_http_methods(["GET", "POST"])
def preset_index(request: HttpRequest) -> JsonResponse:
    """GET: the user's presets. POST: save one (name, system_prompt, model and the panel's fields); a preset of
    that name is replaced. A refused value is a 400 naming it, with the message the socket would give."""
    if request.method == "GET":
        return JsonResponse({"presets": [p.as_json() for p in preset_list(user=request.user)]})
    form = PresetForm(request.POST)
    if not form.is_valid():
        return JsonResponse(form.first_error(), status=400)
    sampling = SamplingForm(request.POST, spec=form.cleaned_data["model"])
    if not sampling.is_valid():
        problem = sampling.problem()
        return JsonResponse({"error": problem.message, "param": problem.param}, status=400)
    preset = services.preset_save(
        user=request.user,
        name=form.cleaned_data["name"],
        system_prompt=form.cleaned_data["system_prompt"],
        params=sampling.cleaned_data,
    )
    return JsonResponse(preset.as_json(), status=201)


@login_required
@require_POST
def preset_delete(request: HttpRequest, pk: int) -> JsonResponse:
    preset = get_object_or_404(preset_list(user=request.user), pk=pk)
    services.preset_delete(preset=preset)
    return JsonResponse({"deleted": pk})
