"""The production configuration (docs/deploy.md): `manage.py check --deploy` is clean with its environment
variables, the settings they give, the Content-Security-Policy every page is sent and satisfies (no inline script
in any template), and the nginx template's syntax."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECRET = "x7Kp2Qm9Zr4Tv8Wn3Lb6Hd1Fg5Js0Yc2Ue7Ia9Oq4Xs6Nk1Rt3Mv8Pz5Bw0Dy"  # 60 characters, no insecure prefix
PRODUCTION = {
    "PLAYGROUND_TLS": "1",
    "PLAYGROUND_ALLOWED_HOSTS": "playground.example.com",
    "PLAYGROUND_CSRF_TRUSTED_ORIGINS": "https://playground.example.com",
    "DJANGO_SECRET_KEY": SECRET,
}
# About this machine, not the configuration: a catalog model whose weights are not on disk.
MACHINE_WARNINGS = {"catalog.W001"}
CHECK_ID = re.compile(r"\((\w+\.[EWCI]\d+)\)")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYGROUND_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**base, "PLAYGROUND_LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_ids(result: subprocess.CompletedProcess[str]) -> set[str]:
    return set(CHECK_ID.findall(result.stdout + result.stderr)) - MACHINE_WARNINGS


def settings_in(**env: str) -> dict:
    names = [
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_CSP",
        "DEBUG",
    ]
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {names!r}}}))"
    )
    result = manage("shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_in_the_production_configuration():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert check_ids(result) == set(), result.stdout + result.stderr


def test_check_deploy_finds_the_development_defaults_unfit():
    # The same check without the production variables has something to say: the test above proves the variables.
    ids = check_ids(manage("check", "--deploy", DJANGO_SECRET_KEY=SECRET))
    assert {"security.W004", "security.W008", "security.W012", "security.W016"} <= ids


def test_production_variables_set_tls_cookies_hsts_and_origins():
    values = settings_in(**PRODUCTION)
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_SSL_REDIRECT"] and values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000 and values["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert values["ALLOWED_HOSTS"] == ["playground.example.com"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://playground.example.com"]
    assert values["SECURE_CSP"]["upgrade-insecure-requests"] is True
    assert values["DEBUG"] is False


def test_development_defaults_are_plain_http():
    values = settings_in(DJANGO_SECRET_KEY=SECRET)
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert not values["SECURE_SSL_REDIRECT"] and not values["SESSION_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SECURE_CSP"]["script-src"] == ["'self'"]  # the CSP is on here too, so the browser tests run it


def test_hsts_and_older_host_variables_can_be_set():
    values = settings_in(
        PLAYGROUND_TLS="1",
        PLAYGROUND_HSTS_SECONDS="3600",
        DJANGO_ALLOWED_HOSTS="old.example.com",
        DJANGO_SECRET_KEY=SECRET,
    )
    assert values["SECURE_HSTS_SECONDS"] == 3600 and values["ALLOWED_HOSTS"] == ["old.example.com"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("PLAYGROUND_SIGNUP", "maybe"), ("PLAYGROUND_TRUSTED_PROXIES", "nginx.internal"), ("PLAYGROUND_CSP", "on")],
)
def test_bad_values_stop_the_start(name, value):
    result = manage("check", DJANGO_SECRET_KEY=SECRET, **{name: value})
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr and name in result.stderr


# --- The Content-Security-Policy ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pages_are_sent_the_content_security_policy(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self'"


TEMPLATES = sorted([*REPO.glob("templates/**/*.html"), *REPO.glob("playground/*/templates/**/*.html")])
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
HANDLER_ATTRIBUTE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


def test_the_templates_have_no_inline_script():
    assert TEMPLATES
    offenders = []
    for template in TEMPLATES:
        text = template.read_text()
        for pattern in (INLINE_SCRIPT, HANDLER_ATTRIBUTE, JAVASCRIPT_URL):
            offenders += [f"{template.relative_to(REPO)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert offenders == [], "the CSP (script-src 'self') blocks these; move them to static/js"


def test_the_scripts_do_not_eval():
    for script in (REPO / "static" / "js").glob("*.js"):
        text = script.read_text()
        assert not re.search(r"\beval\(|new Function\(|setTimeout\(\s*[\"'`]", text), script.name


# --- nginx ----------------------------------------------------------------------------------------------------------


def test_the_nginx_template_is_valid(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (./dev test installs it)")
    config = (REPO / "deploy" / "nginx.conf.template").read_text()
    upstreams = "        server 127.0.0.1:9 max_fails=0;"
    for key, value in {"run_dir": str(tmp_path), "upstreams": upstreams, "listen": "127.0.0.1:9"}.items():
        config = config.replace("{{" + key + "}}", value)
    (tmp_path / "nginx.conf").write_text(config)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    # The upload limits are per route: small everywhere, large only where uploads go.
    assert re.search(r"^\s*client_max_body_size 5m;", config, re.MULTILINE)
    assert re.search(r"location /bulk/ \{\s*client_max_body_size 520m;", config)
    assert re.search(r"location /v1/audio/ \{\s*client_max_body_size 27m;", config)
    assert "limit_conn per_client" in config and "limit_req zone=logins" in config


def test_the_redis_channel_layer_reads_longer_than_its_blocking_pops():
    """An idle socket's consumer waits on the layer in 5-second blocking pops: a read timeout at 5 seconds (redis-py
    8's default) killed it (1011) about every other pop."""
    code = (
        "import json; from django.conf import settings; from channels_redis.core import RedisChannelLayer; "
        "print(json.dumps([settings.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0], RedisChannelLayer.brpop_timeout]))"
    )
    result = manage("shell", "-c", code, PLAYGROUND_CHANNEL_LAYER="redis")
    host, pop = json.loads(result.stdout.strip().splitlines()[-1])
    assert host["socket_timeout"] > pop
