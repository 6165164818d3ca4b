"""The site around the apps: the 404 and 500 pages in the site's layout, the favicon, and the plain words users see
where a library's own message used to show (the device reasons, an audio file that cannot be decoded)."""

from __future__ import annotations

import logging

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from inference import device as device_module
from inference.device import decide_device
from inference.speech import decode_capped
from inference.types import AudioDecodeError

pytestmark = pytest.mark.django_db


def test_an_unknown_page_is_a_styled_404_with_the_sites_navigation(client, user):
    client.force_login(user)
    response = client.get("/no/such/page/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in body and "/no/such/page/" in body
    assert 'class="brand">GenAI Playground' in body and 'aria-label="Site"' in body  # the site's header and nav
    assert reverse("chat:list") in body and "Log out" in body  # with the request: the user's own links


def test_the_500_page_is_styled_and_needs_neither_the_database_nor_the_request():
    from playground.accounts.views import server_error

    def no_database(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the 500 page touched the database")

    with connections["default"].execute_wrapper(no_database):
        response = server_error(None)  # type: ignore[arg-type]  # no request at all
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in body and 'class="brand">GenAI Playground' in body
    assert reverse("catalog") in body and "Log in" not in body  # no account links: there is no user to ask about


def test_an_error_inside_a_view_answers_the_500_page(client, user, settings):
    from django.urls import path

    from playground import urls

    def broken(request):  # noqa: ANN001, ANN202
        raise RuntimeError("boom")

    settings.ROOT_URLCONF = type(
        "Conf", (), {"urlpatterns": [path("broken/", broken), *urls.urlpatterns], "handler500": urls.handler500}
    )
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500 and "Something went wrong on our side" in response.content.decode()


def test_the_500_page_falls_back_to_plain_html_if_its_template_fails(monkeypatch):
    from playground.accounts import views

    def fail(name: str):  # noqa: ANN202
        raise RuntimeError("template engine down")

    monkeypatch.setattr(views.loader, "get_template", fail)
    response = views.server_error(None)  # type: ignore[arg-type]
    assert response.status_code == 500 and b"Something went wrong on our side" in response.content


def test_every_page_links_the_favicon_and_favicon_ico_leads_to_it(client):
    body = client.get(reverse("catalog")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in body
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"


def test_the_favicon_is_a_small_svg(settings):
    from pathlib import Path

    svg = Path(settings.BASE_DIR, "static", "favicon.svg").read_text()
    assert svg.startswith("<svg") and len(svg) < 2000 and "<script" not in svg


# Plain words instead of library names. The details still reach the server log.

LIBRARIES = ("ctranslate2", "onnxruntime", "llama.cpp", "pyav", "ffmpeg", "cuda device", "errno")


def probes(monkeypatch, **answers) -> None:  # noqa: ANN003
    for family, answer in answers.items():
        monkeypatch.setitem(device_module.PROBES, family, lambda answer=answer: answer)


def test_the_device_reasons_on_this_machine_name_no_library():
    decision = decide_device("auto")
    for reason in [decision.reason, *(each.reason for each in decision.engines.values())]:
        assert not any(name in reason.lower() for name in LIBRARIES), reason


def test_on_a_machine_without_a_gpu_the_site_says_just_that(monkeypatch):
    probes(
        monkeypatch,
        llama=(False, "the text engine was installed without GPU support"),
        whisper=(False, device_module.NO_GPU),
        piper=(False, "the voice engine was installed without GPU support"),
    )
    decision = decide_device("auto")
    assert decision.reason == "CPU because no GPU was found"
    assert decision.for_engine("llama").reason == "CPU because the text engine was installed without GPU support"


def test_the_whisper_probe_says_no_gpu_in_plain_words_and_logs_the_library(monkeypatch, caplog):
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 0)
    with caplog.at_level(logging.INFO, logger="inference.device"):
        usable, why = device_module._whisper_probe()
    assert (usable, why) == (False, "no GPU was found")
    assert "no CUDA device visible to CTranslate2" in caplog.text


def test_a_library_that_cannot_be_queried_is_reported_plainly(monkeypatch, caplog):
    import onnxruntime

    def fail() -> list[str]:
        raise OSError("libonnxruntime_providers_shared.so: cannot open shared object file")

    monkeypatch.setattr(onnxruntime, "get_available_providers", fail)
    with caplog.at_level(logging.WARNING, logger="inference.device"):
        usable, why = device_module._piper_probe()
    assert not usable and why == "the GPU could not be checked (details in the server log)"
    assert "libonnxruntime_providers_shared.so" in caplog.text


def test_the_health_route_shows_the_plain_reasons(client):
    body = client.get("/health").json()
    text = str(body["device"]).lower()
    assert not any(name in text for name in ("ctranslate2", "onnxruntime", "cuda device")), text


@pytest.mark.parametrize("data", [b"not audio at all", b"RIFF\x00\x00\x00\x00WAVEfmt garbage", b"\x00" * 64])
def test_audio_that_cannot_be_decoded_is_explained_in_plain_words(data, caplog):
    with caplog.at_level(logging.INFO, logger="inference.speech"), pytest.raises(AudioDecodeError) as refused:
        decode_capped(__import__("io").BytesIO(data), sampling_rate=16000, max_seconds=60)
    message = str(refused.value)
    assert message.startswith("the audio could not be decoded: the file is damaged or not in an audio format")
    assert "Errno" not in message and "Invalid data" not in message
    assert "PyAV could not" in caplog.text  # the decoder's own words are kept for the operator
