"""One settings module for every deployment; the environment picks the differences.

The defaults run locally with nothing else installed: SQLite, the in-memory
channel layer, engines in-process. Code reads settings at call time.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PLAYGROUND_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes", "on")


def env_list(name: str, default: list[str], sep: str = ",") -> list[str]:
    value = os.environ.get(name, "")
    return [part.strip() for part in value.split(sep) if part.strip()] if value.strip() else default


def _secret_key() -> str:
    """From the environment, else a key generated once and kept in var/ (sessions survive restarts)."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
# The host names the site answers to, and the origins (scheme://host[:port]) whose forms and scripts may POST:
# PLAYGROUND_* first, the older DJANGO_* names still read. Behind a proxy that keeps the Host header (as
# deploy/nginx.conf.template does) same-origin posts need no CSRF_TRUSTED_ORIGINS entry.
ALLOWED_HOSTS = env_list(
    "PLAYGROUND_ALLOWED_HOSTS", env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
)
CSRF_TRUSTED_ORIGINS = env_list("PLAYGROUND_CSRF_TRUSTED_ORIGINS", env_list("DJANGO_CSRF_TRUSTED_ORIGINS", []))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "playground.accounts",
    "playground.catalog",
    "playground.chat",
    "playground.presets",
    "playground.studio",
    "playground.tokens",
    "playground.api",
    "playground.usage",
    "playground.bulk",
    "playground.compare",
    "playground.projects",
    "playground.endpoints",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",  # SECURE_CSP below
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "playground.urls"
ASGI_APPLICATION = "playground.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "playground.accounts.context_processors.signup",
                "playground.projects.context_processors.projects",
            ],
        },
    },
]

DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # An engine node (PLAYGROUND_ROLE=engine) keeps its own ledger, beside a web process on the same checkout.
        "NAME": env_str(
            "PLAYGROUND_SQLITE_PATH",
            str(VAR_DIR / ("engine.sqlite3" if os.environ.get("PLAYGROUND_ROLE") == "engine" else "db.sqlite3")),
        ),
        # WAL: readers never wait for the writer (pages stay fast while bulk workers write results),
        # and a commit needs no fsync of its own (synchronous=NORMAL is durable across a process crash).
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # Tests use a file too: SQLite's shared-cache in-memory database answers a second thread's write
        # with "table is locked" at once instead of waiting, and bulk workers write from several threads.
        # One file per test process, so that two test runs on one checkout do not share it.
        "TEST": {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")},
    }
}

# Scale-out: PLAYGROUND_DATABASE_URL=postgresql://user:password@host:port/name puts the database on
# PostgreSQL (shared by every web process and bulk worker).
PLAYGROUND_DATABASE_URL = env_str("PLAYGROUND_DATABASE_URL", "")
if PLAYGROUND_DATABASE_URL:
    _db = urlsplit(PLAYGROUND_DATABASE_URL)
    if _db.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured("PLAYGROUND_DATABASE_URL must be a postgresql:// URL")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(_db.path.lstrip("/")) or "playground",
            "USER": unquote(_db.username or ""),
            "PASSWORD": unquote(_db.password or ""),
            "HOST": _db.hostname or "",
            "PORT": str(_db.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    }

# Redis (PLAYGROUND_REDIS_URL) for several web processes: PLAYGROUND_CHANNEL_LAYER=redis shares the
# channel layer, PLAYGROUND_CACHE=redis the cache (the API's failed-authentication counters and bans).
PLAYGROUND_REDIS_URL = env_str("PLAYGROUND_REDIS_URL", "redis://127.0.0.1:6379/0")
PLAYGROUND_CHANNEL_LAYER = env_str("PLAYGROUND_CHANNEL_LAYER", "memory")  # memory | redis
PLAYGROUND_CACHE = env_str("PLAYGROUND_CACHE", "local")  # local | redis
if PLAYGROUND_CHANNEL_LAYER not in ("memory", "redis") or PLAYGROUND_CACHE not in ("local", "redis"):
    raise ImproperlyConfigured("PLAYGROUND_CHANNEL_LAYER must be memory or redis, PLAYGROUND_CACHE local or redis")
if PLAYGROUND_CHANNEL_LAYER == "redis":
    # A consumer waits on the layer with 5-second blocking pops; redis-py 8 gives up reading after 5 seconds by
    # default, so an idle socket's consumer died of a read timeout (1011) about every other pop. Reads may take
    # longer than the pop; a dead server is still noticed.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": PLAYGROUND_REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
if PLAYGROUND_CACHE == "redis":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": PLAYGROUND_REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "playground"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog"
LOGOUT_REDIRECT_URL = "catalog"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "inference": {"handlers": ["console"], "level": env_str("PLAYGROUND_LOG_LEVEL", "INFO"), "propagate": False},
        "playground": {"handlers": ["console"], "level": env_str("PLAYGROUND_LOG_LEVEL", "INFO"), "propagate": False},
    },
}

# --- Inference -------------------------------------------------------------
# The catalog: the repo's file plus any extra files (os.pathsep-separated); a
# later entry with the same id replaces an earlier one.
PLAYGROUND_CATALOG_FILES = [BASE_DIR / "playground" / "models.toml"] + [
    Path(p) for p in env_list("PLAYGROUND_CATALOG", [], sep=os.pathsep)
]
PLAYGROUND_MODELS_DIR = Path(env_str("PLAYGROUND_MODELS_DIR", str(VAR_DIR / "models")))
PLAYGROUND_DEVICE = env_str("PLAYGROUND_DEVICE", "auto")  # auto | cpu | cuda
PLAYGROUND_THREADS = env_int("PLAYGROUND_THREADS", os.cpu_count() or 2)
PLAYGROUND_MAX_QUEUE = env_int("PLAYGROUND_MAX_QUEUE", 100)  # waiting requests per model
# Fair shares of a model (inference/serving.py): its users take turns (and each user's API tokens), interactive
# requests before bulk. Per user and model: at most MAX_WAITING_PER_USER requests waiting (one more gets a 429
# rate_limit_exceeded with Retry-After; bulk waits its turn instead; 0: no cap), and while another user's request
# waits, at most MAX_RUNNING_PER_USER running (0: half the model's batch slots, at least 1).
PLAYGROUND_MAX_WAITING_PER_USER = env_int("PLAYGROUND_MAX_WAITING_PER_USER", 16)
PLAYGROUND_MAX_RUNNING_PER_USER = env_int("PLAYGROUND_MAX_RUNNING_PER_USER", 0)
# Engine threads run at this nice value (Linux; 0: same as the web threads): a page request gets a
# core at once while a generation runs, and an idle site costs inference nothing.
PLAYGROUND_ENGINE_NICE = env_int("PLAYGROUND_ENGINE_NICE", 10)
# Continuous batching for llama.cpp text models: up to this many requests decode together in one
# context, each with the model's whole served context (n_ctx) in cells of its own, as many as fit
# BATCH_KV_MB of KV cache per model (SmolLM2: 5 x 8,192 tokens, 22.5 KB each; Gemma 3 270M: 8 x 4,096).
# 0 or 1: one request at a time.
PLAYGROUND_BATCH_SLOTS = env_int("PLAYGROUND_BATCH_SLOTS", 8)
PLAYGROUND_BATCH_KV_MB = env_int("PLAYGROUND_BATCH_KV_MB", 1024)
# A batched model keeps each finished request's KV cells in its slot, and a request that starts the same way (the
# next turn of a conversation, a shared system prompt) reads only the rest (inference/batching.py); a seeded
# request reuses only what a cold run computes exactly alike. 0: every request reads its whole prompt.
PLAYGROUND_PREFIX_CACHE = env_bool("PLAYGROUND_PREFIX_CACHE", True)
PLAYGROUND_WARM_MODELS = env_bool("PLAYGROUND_WARM_MODELS", False)  # load every model at start-up
# Which of the catalog's in-process models this process serves (comma-separated ids; unset: all, empty: none).
# Remote models (engine = "openai" | "tgi": served by the upstreams their entries list) are always offered.
PLAYGROUND_SERVE_MODELS: list[str] | None = (
    env_list("PLAYGROUND_SERVE_MODELS", []) if "PLAYGROUND_SERVE_MODELS" in os.environ else None
)

# --- Role ----------------------------------------------------------------------
# web: the whole site. engine: a node of a fleet (docs/deploy.md): only the API routes (/v1, /ai, TGI's), /health
# and /metrics, for callers presenting PLAYGROUND_CLUSTER_TOKEN as their bearer token (the web tier's catalog names
# this node as an upstream with api_key_env); no pages, sockets or bulk workers.
PLAYGROUND_ROLE = env_str("PLAYGROUND_ROLE", "web")
PLAYGROUND_CLUSTER_TOKEN = env_str("PLAYGROUND_CLUSTER_TOKEN", "")
if PLAYGROUND_ROLE not in ("web", "engine"):
    raise ImproperlyConfigured(f"PLAYGROUND_ROLE must be web or engine, not {PLAYGROUND_ROLE!r}")
if PLAYGROUND_ROLE == "engine":
    if len(PLAYGROUND_CLUSTER_TOKEN) < 16:
        raise ImproperlyConfigured("PLAYGROUND_ROLE=engine needs PLAYGROUND_CLUSTER_TOKEN (16 characters or more)")
    ROOT_URLCONF = "playground.urls_engine"

# Write a usage record for every inference (the ledger). Tests switch it off except where they test it.
PLAYGROUND_METERING = env_bool("PLAYGROUND_METERING", True)
# /metrics (Prometheus) answers a scraper sending this as a bearer token, and staff sessions.
PLAYGROUND_METRICS_TOKEN = env_str("PLAYGROUND_METRICS_TOKEN", "")

# --- Bulk jobs ---------------------------------------------------------------
# Django's Tasks framework runs bulk jobs. The default queue lives in the database (django-tasks-db);
# `./dev run` starts PLAYGROUND_BULK_WORKERS worker threads inside the site, `manage.py bulk_worker`
# runs more as processes of their own.
# PLAYGROUND_TASKS_BACKEND=redis puts the queue in Redis (django-tasks-rq over RQ) for many worker
# processes on many machines; their workers are `manage.py bulk_worker` processes.
PLAYGROUND_TASKS_BACKEND = env_str("PLAYGROUND_TASKS_BACKEND", "database")  # database | redis
if PLAYGROUND_TASKS_BACKEND == "redis":
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    # A bulk job runs as long as its prompts take: no RQ job timeout.
    RQ_QUEUES = {"default": {"URL": PLAYGROUND_REDIS_URL, "DEFAULT_TIMEOUT": -1}}
    INSTALLED_APPS += ["django_rq"]
elif PLAYGROUND_TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
else:
    raise ImproperlyConfigured("PLAYGROUND_TASKS_BACKEND must be 'database' or 'redis'")
PLAYGROUND_BULK_WORKERS = env_int("PLAYGROUND_BULK_WORKERS", 0)  # worker threads inside the site (./dev run: 1)
PLAYGROUND_BULK_PARALLEL = env_int("PLAYGROUND_BULK_PARALLEL", 1)  # tasks per job: how many workers share one
PLAYGROUND_BULK_POLL = env_float("PLAYGROUND_BULK_POLL", 1.0)  # seconds an idle worker waits between looks
# A worker's claim on a prompt lasts this many seconds unless renewed (it renews every sixth of it):
# how soon a killed worker's prompts are taken over and its job resumed.
PLAYGROUND_BULK_LEASE = env_float("PLAYGROUND_BULK_LEASE", 30.0)

# --- Public API --------------------------------------------------------------
PLAYGROUND_DEFAULT_TEXT_MODEL = env_str("PLAYGROUND_DEFAULT_TEXT_MODEL", "gemma-3-270m")  # what TGI's /generate serves
PLAYGROUND_REQUEST_TIMEOUT = env_int("PLAYGROUND_REQUEST_TIMEOUT", 30)  # seconds per API request; the engine is stopped
# Cost limits (work, not bytes): the longest audio transcribed through the API and through the Playground's speech
# socket (read from the container before decoding; decoding stops there too), and the tokens of one embeddings
# request (all its inputs together).
PLAYGROUND_MAX_AUDIO_SECONDS = env_int("PLAYGROUND_MAX_AUDIO_SECONDS", 30 * 60)
PLAYGROUND_STUDIO_MAX_AUDIO_SECONDS = env_int("PLAYGROUND_STUDIO_MAX_AUDIO_SECONDS", 10 * 60)
PLAYGROUND_EMBEDDINGS_MAX_TOKENS = env_int("PLAYGROUND_EMBEDDINGS_MAX_TOKENS", 65_536)
# Request bodies (playground/bodylimit.py, refused with 413 before they are read): audio uploads to /v1/audio/ may
# weigh PLAYGROUND_MAX_BODY_BYTES, bulk CSV uploads the CSV limit (500 MB), every other route PLAYGROUND_MAX_JSON_BYTES.
PLAYGROUND_MAX_BODY_BYTES = env_int("PLAYGROUND_MAX_BODY_BYTES", 26 * 1024 * 1024)
PLAYGROUND_MAX_JSON_BYTES = env_int("PLAYGROUND_MAX_JSON_BYTES", 4 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = PLAYGROUND_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = PLAYGROUND_MAX_BODY_BYTES
# Failed-authentication throttling (as TGI documents it): per client address,
# AUTH_FAILURE_LIMIT failures within AUTH_FAILURE_WINDOW seconds ban it for AUTH_BAN_SECONDS.
PLAYGROUND_AUTH_FAILURE_LIMIT = env_int("PLAYGROUND_AUTH_FAILURE_LIMIT", 5)
PLAYGROUND_AUTH_FAILURE_WINDOW = env_int("PLAYGROUND_AUTH_FAILURE_WINDOW", 1800)
PLAYGROUND_AUTH_BAN_SECONDS = env_int("PLAYGROUND_AUTH_BAN_SECONDS", 300)
# Only a credential presented and wrong counts (a token, a password, the metrics token); the ban holds for the
# API, /metrics, the login pages (the site's and the admin's) and WebSocket handshakes. IPv6 counts by /64.
# Proxies whose X-Forwarded-For is believed: addresses or networks (10.0.0.1, 10.0.0.0/8, fd00::/8); otherwise
# the socket address counts.
PLAYGROUND_TRUSTED_PROXIES = env_list("PLAYGROUND_TRUSTED_PROXIES", [])
for _proxy in PLAYGROUND_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"PLAYGROUND_TRUSTED_PROXIES: {_proxy!r} is neither an IP address nor a network"
        ) from None

# --- Accounts ------------------------------------------------------------------
# open: anyone may sign up at /accounts/signup/; closed: accounts are made by staff (admin, createsuperuser).
PLAYGROUND_SIGNUP = env_str("PLAYGROUND_SIGNUP", "open")
if PLAYGROUND_SIGNUP not in ("open", "closed"):
    raise ImproperlyConfigured("PLAYGROUND_SIGNUP must be 'open' or 'closed'")
# Accounts created per client address (an IPv6 /64) per hour; 0: no limit. More get 429 with Retry-After.
PLAYGROUND_SIGNUP_PER_HOUR = env_int("PLAYGROUND_SIGNUP_PER_HOUR", 10)

# --- Production: TLS, cookies, Content-Security-Policy -------------------------
# PLAYGROUND_TLS=1: the site is reached over HTTPS through a proxy that terminates TLS and says so in
# X-Forwarded-Proto (deploy/nginx.conf.template sets it, overwriting whatever the client sent: never turn this on
# behind a proxy that passes the client's header through). Then cookies are sent over HTTPS only, plain HTTP is
# redirected (except /health, for a load balancer's probe) and HSTS tells browsers to stay on HTTPS.
# docs/deploy.md has the checklist; `manage.py check --deploy` is clean with it.
PLAYGROUND_TLS = env_bool("PLAYGROUND_TLS", False)
if PLAYGROUND_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("PLAYGROUND_SSL_REDIRECT", PLAYGROUND_TLS)
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SESSION_COOKIE_SECURE = PLAYGROUND_TLS
CSRF_COOKIE_SECURE = PLAYGROUND_TLS
SECURE_HSTS_SECONDS = env_int("PLAYGROUND_HSTS_SECONDS", 31_536_000 if PLAYGROUND_TLS else 0)  # a year
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PLAYGROUND_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("PLAYGROUND_HSTS_PRELOAD", False)
# Preloading is a promise made to the browsers' lists (hstspreload.org), hard to take back, that an operator makes
# on purpose; check --deploy's reminder of it (W021) is silenced unless PLAYGROUND_HSTS_PRELOAD=1 asks for it.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Content-Security-Policy (Django's own middleware): scripts only from this site's files, no inline script or
# handler attribute, no eval; connections (fetch, the WebSockets: 'self' covers ws/wss of this host) only to this
# site. Inline styles stay allowed: the embeddings heatmap colours its cells with style attributes, some pages
# carry a <style> block and htmx adds its indicator style; an injected style cannot run code.
# data: and blob: media are the synthesized speech (a data: URL) and the recorded audio's preview (blob:).
# PLAYGROUND_CSP: enforce (default) | report-only (violations are only reported in the browser console) | off.
PLAYGROUND_CSP = env_str("PLAYGROUND_CSP", "enforce")
if PLAYGROUND_CSP not in ("enforce", "report-only", "off"):
    raise ImproperlyConfigured("PLAYGROUND_CSP must be 'enforce', 'report-only' or 'off'")
_CSP_POLICY: dict[str, Any] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "media-src": [CSP.SELF, "data:", "blob:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "upgrade-insecure-requests": PLAYGROUND_TLS,
}
SECURE_CSP = _CSP_POLICY if PLAYGROUND_CSP == "enforce" else {}
SECURE_CSP_REPORT_ONLY = _CSP_POLICY if PLAYGROUND_CSP == "report-only" else {}
