"""The throttle of failed authentication per client address: API keys on ``/api`` and console
sign-ins alike, one count for both.

After ``MAX_FAILURES`` failures within ``WINDOW_MINUTES`` an address is refused (429) for the
rest of the window whatever key it presents, the right one included: the answers never tell a
right guess from a wrong one. A failure is a key that was checked and found wrong; a refusal
of a blocked address checks nothing and is not counted, so the block ends with the window.

The counts live in the database (``console_sign_ins``, one row per address and minute with a
failure), so every replica and worker sharing it sees one count and a restart resets nothing.
Only failures read and write them, under a per-address advisory lock, so that guesses sent at
once are counted one after the other and none slips past the limit. A valid API key costs no
round trip: each process keeps the blocked addresses in memory (``AuthThrottle``) until their
block ends. It learns of a block at once from a failure or a refusal of its own, and of one
recorded through another replica or worker within ``REFRESH_INTERVAL_S``, from a background
read of the blocked addresses (``BlockRefresher``: one indexed query, whatever the traffic).
Within a process, one failure per address at a time goes to the database: a flood of guesses
from one address waits in memory, not on pooled connections.

The module's functions add to the caller's session and never commit; ``AuthThrottle`` commits
its own short transactions, since a failure counts whatever becomes of the request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.background import Worker
from service.db import READ_DEADLINE_S, transaction
from service.logs import Throttled

logger = logging.getLogger(__name__)

MAX_FAILURES = 20
"""Failed authentications one address may make within ``WINDOW_MINUTES``; the next is refused."""
WINDOW_MINUTES = 10
MAX_REMEMBERED_ADDRESSES = 10_000
"""Blocked addresses one process keeps in memory (those blocked longest ago make room first)."""
IPV6_PREFIX_LENGTH = 64
"""An IPv6 client counts with its /64 network: one host usually holds a whole /64."""
UNKNOWN_CLIENT = "unknown"
REFRESH_INTERVAL_S = 2.0
"""How soon a process learns of a block that another process recorded."""
# The class of the advisory locks (pg_advisory_xact_lock(class, key)), "auth" in ASCII; the
# two-key lock space does not overlap the one-key locks that other code takes.
_LOCK_CLASS = 0x61757468

_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(:client))")
# Each minute bucket of the window, newest first, with the seconds it still counts for.
_BUCKETS_SQL = text(
    """
SELECT failures, extract(epoch FROM minute + make_interval(mins => :window) - now()) AS left_s
FROM console_sign_ins
WHERE client = :client AND minute > now() - make_interval(mins => :window)
ORDER BY minute DESC
"""
)
_RECORD_SQL = text(
    """
INSERT INTO console_sign_ins (client, minute, failures)
VALUES (:client, date_trunc('minute', now()), 1)
ON CONFLICT (client, minute) DO UPDATE SET failures = console_sign_ins.failures + 1
"""
)
# The addresses blocked now, each with the seconds its block lasts: the newest bucket at which
# the count (newest first) reaches the limit leaves the window last.
_BLOCKED_SQL = text(
    """
SELECT client, extract(epoch FROM max(minute) + make_interval(mins => :window) - now()) AS left_s
FROM (
    SELECT client, minute, sum(failures) OVER (PARTITION BY client ORDER BY minute DESC) AS newest_first
    FROM console_sign_ins
    WHERE minute > now() - make_interval(mins => :window)
) AS counted
WHERE newest_first >= :limit
GROUP BY client
"""
)
_FORGET_SQL = text("DELETE FROM console_sign_ins WHERE minute <= now() - make_interval(mins => :window)")


def client_key(host: str | None) -> str:
    """The address a failure counts against: ``host`` (an IPv4-mapped IPv6 address as IPv4), an
    IPv6 host's /64 network, ``unknown`` without a host."""
    if not host:
        return UNKNOWN_CLIENT
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX_LENGTH), strict=False))
    return str(address)


@dataclass(frozen=True)
class Standing:
    """An address's failures within the window, and how long it is blocked (0: it is not)."""

    failures: int
    retry_after_s: int


@dataclass(frozen=True)
class Verdict:
    """What became of a failed authentication."""

    counted: bool
    """Whether this failure was counted; ``False`` when the address was already blocked."""
    standing: Standing
    """The address's standing after it (this failure included when counted)."""


async def standing(session: AsyncSession, client: str) -> Standing:
    """``client``'s failures within the window, and the seconds until fewer than
    ``MAX_FAILURES`` of them are left in it (0 when there are fewer already)."""
    rows = (await session.execute(_BUCKETS_SQL, {"client": client, "window": WINDOW_MINUTES})).all()
    failures = 0
    retry_after_s = 0
    for row in rows:
        failures += int(row.failures)
        # The bucket that takes the count to the limit: once it leaves the window, the newer
        # ones hold fewer failures than that.
        if failures >= MAX_FAILURES and not retry_after_s:
            retry_after_s = max(1, math.ceil(float(row.left_s)))
    return Standing(failures=failures, retry_after_s=retry_after_s)


async def blocked_addresses(session: AsyncSession) -> list[tuple[str, int]]:
    """Every address blocked now, with the seconds left of its block."""
    params = {"window": WINDOW_MINUTES, "limit": MAX_FAILURES}
    rows = (await session.execute(_BLOCKED_SQL, params)).all()
    return [(row.client, max(1, math.ceil(float(row.left_s)))) for row in rows]


async def record_failure(session: AsyncSession, client: str) -> Verdict:
    """Count one failed authentication of ``client``, unless it is blocked already (then nothing
    is counted). Failures older than the window are forgotten meanwhile."""
    await session.execute(_LOCK_SQL, {"lock_class": _LOCK_CLASS, "client": client})
    before = await standing(session, client)
    if before.retry_after_s:
        return Verdict(counted=False, standing=before)
    await session.execute(_FORGET_SQL, {"window": WINDOW_MINUTES + 1})
    await session.execute(_RECORD_SQL, {"client": client})
    return Verdict(counted=True, standing=await standing(session, client))


Sessions = async_sessionmaker[AsyncSession]


@dataclass
class _Turn:
    """The failures of one address being judged in this process, one at a time."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class AuthThrottle:
    """One process's side of the throttle: the addresses it found blocked, until their block
    ends, in front of the shared counts. ``clock`` is monotonic seconds (tests move it on)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._blocked_until: dict[str, float] = {}
        self._judging: dict[str, _Turn] = {}
        # Refusals repeat with every request of a blocked address: one line per interval says it.
        self._refusals_log = Throttled(logger)

    @property
    def blocks_any(self) -> bool:
        """Whether this process knows of any blocked address (a check per request is then due)."""
        return bool(self._blocked_until)

    def blocked_for(self, client: str) -> int:
        """Seconds left of ``client``'s block as this process knows it (0: none known), without
        a round trip."""
        until = self._blocked_until.get(client)
        if until is None:
            return 0
        left_s = until - self.clock()
        if left_s <= 0:
            del self._blocked_until[client]
            return 0
        return max(1, math.ceil(left_s))

    async def check(self, sessions: Sessions, client: str) -> int:
        """Seconds left of ``client``'s block, from this process's memory, else the shared counts."""
        known = self.blocked_for(client)
        if known:
            return known
        async with transaction(sessions, deadline_s=READ_DEADLINE_S) as session:
            found = await standing(session, client)
        if found.retry_after_s:
            self._remember(client, found.retry_after_s)
        return found.retry_after_s

    async def fail(self, sessions: Sessions, client: str, via: str) -> Verdict:
        """Count a failed authentication of ``client`` through ``via`` (``API key``, ``console
        sign-in``) and log it (the address, never the key); a block it starts or finds is
        remembered. Not counted when ``client`` is blocked already (the verdict says so)."""
        turn = self._judging.get(client)
        if turn is None:
            turn = self._judging[client] = _Turn()
        turn.waiting += 1
        try:
            async with turn.lock:
                known = self.blocked_for(client)  # found while this one waited its turn
                if known:
                    self.refused(client, via)
                    blocked = Standing(failures=MAX_FAILURES, retry_after_s=known)
                    return Verdict(counted=False, standing=blocked)
                async with transaction(sessions, deadline_s=READ_DEADLINE_S) as session:
                    verdict = await record_failure(session, client)
        finally:
            turn.waiting -= 1
            if not turn.waiting:
                del self._judging[client]
        self._log(client, via, verdict)
        if verdict.standing.retry_after_s:
            self._remember(client, verdict.standing.retry_after_s)
        return verdict

    async def refresh(self, sessions: Sessions) -> None:
        """Learn the blocks recorded through other processes (those known already are kept)."""
        async with transaction(sessions, deadline_s=READ_DEADLINE_S) as session:
            blocked = await blocked_addresses(session)
        for client, retry_after_s in blocked:
            self._remember(client, retry_after_s)

    def refused(self, client: str, via: str) -> None:
        """Log a refusal of a blocked address (at most one line per interval for all of them)."""
        self._refusals_log.warning("authentication refused: %s is blocked (%s)", client, via)

    def _log(self, client: str, via: str, verdict: Verdict) -> None:
        if not verdict.counted:
            self.refused(client, via)
            return
        failures, retry_after_s = verdict.standing.failures, verdict.standing.retry_after_s
        logger.warning(
            "authentication failed",
            extra={"client": client, "via": via, "failures": failures, "limit": MAX_FAILURES},
        )
        if retry_after_s:
            logger.warning(
                "authentication throttled: address blocked",
                extra={"client": client, "retry_after_s": retry_after_s},
            )

    def _remember(self, client: str, retry_after_s: int) -> None:
        if client not in self._blocked_until and len(self._blocked_until) >= MAX_REMEMBERED_ADDRESSES:
            now = self.clock()
            self._blocked_until = {c: until for c, until in self._blocked_until.items() if until > now}
            if len(self._blocked_until) >= MAX_REMEMBERED_ADDRESSES:
                del self._blocked_until[next(iter(self._blocked_until))]
        self._blocked_until[client] = self.clock() + retry_after_s


class BlockRefresher(Worker):
    """Reads the blocked addresses into ``throttle`` every ``interval_s`` (a lifespan task)."""

    def __init__(
        self, throttle: AuthThrottle, sessions: Sessions, interval_s: float = REFRESH_INTERVAL_S
    ) -> None:
        super().__init__("auth-blocks")
        self.throttle = throttle
        self.sessions = sessions
        self.interval_s = interval_s
        self._failures_log = Throttled(logger, interval_s=60.0)

    async def run(self) -> None:
        """Refresh, then again every ``interval_s``, until stopped."""
        while not self.stopping:
            try:
                await self.throttle.refresh(self.sessions)
            except Exception as exc:  # the database may be away: failures still count when it is back
                self._failures_log.warning("reading the blocked addresses failed: %s", type(exc).__name__)
            if not await self._pause(self.interval_s):
                return
