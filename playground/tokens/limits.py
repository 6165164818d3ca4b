"""Rate limits and spending caps per API token: checked on every API request, shown on the tokens and usage pages.

A token's limits are fields on ApiToken; an empty one is no limit. What counts, and over which window:

- **Requests per minute**: admissions in a sliding 60 s window, counted in Django's cache in one-second buckets
  (``token-rpm:<token id>:<unix second>``). The ledger cannot count them: it is written when an inference ends, so
  a burst of requests still in flight (and requests refused later, e.g. for a bad body) would not show there yet.
  Each admission increments its second's bucket first and then sums the window, and gives its place back when the
  sum is over the limit; so concurrent requests can never be admitted beyond the limit (at worst two racing at the
  edge are both refused). With the Redis cache (``PLAYGROUND_CACHE=redis``) every web process shares the buckets;
  with the default local-memory cache each process counts its own, so N processes admit up to N times the limit.
  A refused request is not counted, so a client retrying while limited does not push its reset further away.
- **Tokens per minute**: prompt plus completion tokens of the token's ledger rows (UsageRecord) written in the last
  60 s. A request is admitted while that sum is under the limit. Its size is not known before it runs, so the
  request that crosses the limit runs to its end and is counted in full; the requests after it are refused until
  enough of the window's tokens are older than 60 s to bring the sum back under the limit. Requests still running
  are not in the ledger yet, which is one more reason to pair this limit with requests per minute.
- **Spend per day / per month**: the sum of the ledger's ``cost`` for the token since the start of the current UTC
  day / calendar month, in the ledger's currency. Admitted while under the cap (the crossing request runs, as for
  tokens); refused until the period ends.

Every function takes ``now`` (default ``timezone.now()``) so the tests can fix and move the clock. Only the ledger
rows written at or before ``now`` count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db.models import F, Q, Sum
from django.utils import timezone

from playground.contract.errors import Problem
from playground.tokens.models import ApiToken
from playground.usage.models import UsageRecord

WINDOW_SECONDS = 60
BUCKET_TIMEOUT = 2 * WINDOW_SECONDS  # a bucket outlives its window comfortably, then the cache drops it
ZERO = Decimal("0")
CURRENCY = "USD"  # the ledger's unit (the usage and pricing pages say so too)

RPM = "requests_per_minute"
TPM = "tokens_per_minute"
DAY = "spend_per_day"
MONTH = "spend_per_month"
LABELS = {
    RPM: "requests per minute",
    TPM: "tokens per minute",
    DAY: "spend per day (UTC)",
    MONTH: "spend per month (UTC)",
}


@dataclass(frozen=True)
class LimitStatus:
    """One limit of one token at one moment: what it allows, what is used, what is left, when it frees up."""

    name: str  # the ApiToken field
    label: str
    limit: int | Decimal | None  # None: no limit
    used: int | Decimal
    resets_at: datetime | None  # when the use drops back under the limit (None: nothing to wait for)
    retry_after: int  # whole seconds until resets_at; 0 when the limit is not reached

    @property
    def unlimited(self) -> bool:
        return self.limit is None

    @property
    def left(self) -> int | Decimal | None:
        if self.limit is None:
            return None
        return max(self.limit - self.used, 0)

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    @property
    def is_money(self) -> bool:
        return self.name in (DAY, MONTH)

    def _show(self, value: int | Decimal | None) -> str:
        if value is None:
            return "no limit"
        return f"{_money(value)} {CURRENCY}" if self.is_money else str(value)

    @property
    def used_display(self) -> str:
        return self._show(self.used)

    @property
    def limit_display(self) -> str:
        return self._show(self.limit)

    @property
    def left_display(self) -> str:
        return self._show(self.left)


def _seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from now to moment, at least 1 (a Retry-After of 0 invites a retry that fails again)."""
    return max(math.ceil((moment - now).total_seconds()), 1)


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _month_start(now: datetime) -> datetime:
    return _day_start(now).replace(day=1)


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


# Requests per minute: one-second buckets in the cache.


def _bucket_key(token: ApiToken, second: int) -> str:
    return f"token-rpm:{token.pk}:{second}"


def _window_seconds(now: datetime) -> list[int]:
    """The 60 whole seconds of the window, oldest first; a bucket leaves it 60 s after its second began."""
    current = math.floor(now.timestamp())
    return list(range(current - WINDOW_SECONDS + 1, current + 1))


def _window_counts(token: ApiToken, now: datetime) -> list[tuple[int, int]]:
    """(second, admissions) for the window's non-empty buckets, oldest first."""
    seconds = _window_seconds(now)
    found = cache.get_many([_bucket_key(token, s) for s in seconds])
    counts = [(s, int(found.get(_bucket_key(token, s)) or 0)) for s in seconds]
    return [(s, n) for s, n in counts if n > 0]


def _rpm_frees_at(counts: list[tuple[int, int]], limit: int) -> datetime | None:
    """When enough of the window's admissions have left it for one more to fit (None: one fits now)."""
    over = sum(n for _, n in counts) - limit + 1
    for second, n in counts:
        over -= n
        if over <= 0:
            return datetime.fromtimestamp(second + WINDOW_SECONDS, tz=UTC)
    return None


def _rpm_status(token: ApiToken, now: datetime) -> LimitStatus:
    counts = _window_counts(token, now)
    used = sum(n for _, n in counts)
    limit = token.requests_per_minute
    frees_at = _rpm_frees_at(counts, limit) if limit is not None and used >= limit else None
    return _status(RPM, limit, used, frees_at, now)


def _admit(token: ApiToken, now: datetime) -> None:
    """Count this request in its second's bucket; refuse (and uncount) it when that puts the window over the limit.
    Counted for unlimited tokens too, so the pages can show requests in the last minute and a new limit starts
    from the real recent traffic."""
    second = math.floor(now.timestamp())
    key = _bucket_key(token, second)
    cache.add(key, 0, timeout=BUCKET_TIMEOUT)
    try:
        cache.incr(key)
    except ValueError:  # the bucket expired between add and incr
        cache.set(key, 1, timeout=BUCKET_TIMEOUT)
    limit = token.requests_per_minute
    if limit is None:
        return
    counts = _window_counts(token, now)  # this request included
    if sum(n for _, n in counts) > limit:
        try:
            cache.decr(key)
        except ValueError:
            pass
        others = [(s, n - 1 if s == second else n) for s, n in counts]  # the window as it was without this one
        used = sum(n for _, n in others)
        raise _problem(_status(RPM, limit, used, _rpm_frees_at(others, limit), now))


# Tokens per minute and spending: the ledger.


def _ledger_sums(token: ApiToken, now: datetime) -> dict[str, int | Decimal]:
    """The window's tokens, today's and this month's spend, in one query over the token's recent ledger rows."""
    window_start = now - timedelta(seconds=WINDOW_SECONDS)
    day_start, month_start = _day_start(now), _month_start(now)
    sums = UsageRecord.objects.filter(
        token=token, created_at__lte=now, created_at__gte=min(window_start, month_start)
    ).aggregate(
        tokens=Sum(F("prompt_tokens") + F("completion_tokens"), filter=Q(created_at__gt=window_start)),
        day=Sum("cost", filter=Q(created_at__gte=day_start)),
        month=Sum("cost", filter=Q(created_at__gte=month_start)),
    )
    return {
        "tokens": int(sums["tokens"] or 0),
        "day": Decimal(sums["day"] or ZERO),
        "month": Decimal(sums["month"] or ZERO),
    }


def _tpm_frees_at(token: ApiToken, now: datetime, limit: int) -> datetime | None:
    """When enough of the window's tokens are older than 60 s for the sum to be under the limit again."""
    window_start = now - timedelta(seconds=WINDOW_SECONDS)
    rows = list(
        UsageRecord.objects.filter(token=token, created_at__gt=window_start, created_at__lte=now)
        .order_by("created_at", "pk")
        .values_list("created_at", "prompt_tokens", "completion_tokens")
    )
    remaining = sum(p + c for _, p, c in rows)
    for created_at, prompt, completion in rows:
        remaining -= prompt + completion
        if remaining < limit:
            return created_at + timedelta(seconds=WINDOW_SECONDS)
    return None


def _ledger_statuses(token: ApiToken, now: datetime, *, only_set: bool) -> list[LimitStatus]:
    """Tokens per minute, spend per day and per month; with only_set, just the limits the token has (and no query
    at all when it has none)."""
    wanted = [name for name in (TPM, DAY, MONTH) if not only_set or getattr(token, name) is not None]
    if not wanted:
        return []
    sums = _ledger_sums(token, now)
    statuses = []
    for name in wanted:
        limit = getattr(token, name)
        if name == TPM:
            used: int | Decimal = sums["tokens"]
            frees_at = _tpm_frees_at(token, now, limit) if limit is not None and used >= limit else None
        elif name == DAY:
            used = sums["day"]
            frees_at = _day_start(now) + timedelta(days=1)
        else:
            used = sums["month"]
            frees_at = _next_month(_month_start(now))
        statuses.append(_status(name, limit, used, frees_at, now))
    return statuses


def _status(
    name: str, limit: int | Decimal | None, used: int | Decimal, frees_at: datetime | None, now: datetime
) -> LimitStatus:
    reached = limit is not None and used >= limit
    return LimitStatus(
        name=name,
        label=LABELS[name],
        limit=limit,
        used=used,
        resets_at=frees_at if reached else None,
        retry_after=_seconds_until(frees_at or now, now) if reached else 0,
    )


def _money(value: int | Decimal | None) -> str:
    return f"{Decimal(value or 0).quantize(Decimal('0.000001')).normalize():f}"


def _problem(status: LimitStatus) -> Problem:
    """The 429 for a reached limit: which limit, how much was used, when it resets."""
    when = f"{status.resets_at:%Y-%m-%d %H:%M:%S} UTC" if status.resets_at else "soon"
    wait = f"try again in {status.retry_after} s ({when})"
    if status.name == RPM:
        requests = "request" if status.limit == 1 else "requests"
        message = f"rate limit reached: this token allows {status.limit} {requests} per minute; {wait}"
    elif status.name == TPM:
        message = (
            f"rate limit reached: this token allows {status.limit} tokens per minute and used {status.used} in the "
            f"last 60 s; {wait}"
        )
    else:
        period = "day" if status.name == DAY else "month"
        message = (
            f"spending cap reached: this token allows {_money(status.limit)} {CURRENCY} per {period} (UTC) and has "
            f"spent {_money(status.used)} {CURRENCY} this {period}; the cap resets at {when}, in "
            f"{status.retry_after} s"
        )
    return Problem(
        "rate_limit_exceeded",
        message,
        headers={"Retry-After": str(status.retry_after)},
        extra={"retry_after": status.retry_after},
    )


def limits_check(*, token: ApiToken, now: datetime | None = None) -> None:
    """Admit one API request for this token, or raise Problem("rate_limit_exceeded") (429) naming the limit.

    The ledger's limits (tokens per minute, spending caps) are read first, without counting anything; when several
    are reached the one that frees up last is named, since retrying earlier would fail anyway. Then the request is
    counted against requests per minute. A token without limits costs no query, only its admission count."""
    now = now or timezone.now()
    reached = [s for s in _ledger_statuses(token, now, only_set=True) if s.reached]
    if reached:
        raise _problem(max(reached, key=lambda s: s.retry_after))
    _admit(token, now)


def limits_status(*, token: ApiToken, now: datetime | None = None) -> list[LimitStatus]:
    """Every limit of the token (set or not) with its use, what is left and when it frees up, for the pages."""
    now = now or timezone.now()
    return [_rpm_status(token, now), *_ledger_statuses(token, now, only_set=False)]
