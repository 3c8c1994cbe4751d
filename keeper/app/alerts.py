"""Alerts: ALERT log records (and actions taken) become webhook notifications.

The keeper reports what an operator must know through the `keeper` loggers, with the alert's
kind and subject attached (`extra=alert(kind, subject)`); `AlertHandler` turns those records into
POSTs to every configured webhook, formatted for it (generic JSON, Slack, Discord, Telegram), with
tiers (info: actions taken; warning; critical: money at risk or the keeper blind), de-duplication
and a cooldown per (kind, subject). Webhook URLs are secrets: they come from the environment
(KEEPER_ALERT_WEBHOOKS) and never reach a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from keeper.sources.rpc import redact

log = logging.getLogger("keeper.alerts")
TIERS = ("info", "warning", "critical")
FORMATS = ("json", "slack", "discord", "telegram")
ALERT_LOGGER = "keeper"


@dataclass(frozen=True)
class Webhook:
    format: str
    url: str = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.format} {redact(self.url)}"

    def payload(self, a: dict[str, Any]) -> dict[str, Any]:
        line = f"[{a['tier'].upper()}] keeper {a['kind']}: {a['message']}"
        if self.format == "slack":
            return {"text": line}
        if self.format == "discord":
            return {"content": line[:2000]}
        if self.format == "telegram":
            chat = parse_qs(urlsplit(self.url).query).get("chat_id", [""])[0]
            return {"chat_id": chat, "text": line}
        return a


def parse_webhooks(value: str) -> list[Webhook]:
    """`format=url[,format=url...]`; a bare URL is generic JSON. Telegram: the Bot API's
    sendMessage URL with `?chat_id=...`. ValueError names the bad entry without the URL."""
    hooks = []
    for k, entry in enumerate(e.strip() for e in value.split(",") if e.strip()):
        fmt, sep, url = entry.partition("=")
        if not sep or "://" in fmt:
            fmt, url = "json", entry
        fmt = fmt.strip().lower()
        if fmt not in FORMATS:
            raise ValueError(f"entry {k + 1}: unknown format {fmt!r} (use {', '.join(FORMATS)})")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"entry {k + 1} ({fmt}): expected an http(s):// URL")
        if fmt == "telegram" and "chat_id=" not in url:
            raise ValueError(f"entry {k + 1} (telegram): the URL needs ?chat_id=...")
        hooks.append(Webhook(fmt, url.strip()))
    return hooks


def alert(kind: str, subject: str = "", tier: str | None = None) -> dict[str, Any]:
    """`extra=` for a log call that is an alert: its kind ('stale oracle', 'liquidation') and
    subject (an asset, an account). The tier defaults to the record's level."""
    return {"alert_kind": kind, "alert_subject": subject, "alert_tier": tier}


def tier_of(record: logging.LogRecord) -> str:
    explicit = getattr(record, "alert_tier", None)
    if explicit:
        return str(explicit)
    if record.levelno >= logging.ERROR:
        return "critical"
    return "warning" if record.levelno >= logging.WARNING else "info"


class AlertHandler(logging.Handler):
    """Sends alert records to the webhooks, from the running event loop."""

    def __init__(self, hooks: list[Webhook], *, min_tier: str = "info", cooldown_s: float = 600.0):
        super().__init__(logging.DEBUG)
        self.hooks, self.min_tier, self.cooldown_s = hooks, min_tier, cooldown_s
        self._last: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.suppressed = 0
        self.failed = 0
        self.recent: list[dict[str, Any]] = []
        """The latest alerts (the status page shows them), sent or not."""
        self.host = socket.gethostname()

    def emit(self, record: logging.LogRecord) -> None:
        kind = getattr(record, "alert_kind", None)
        message = record.getMessage().removeprefix("ALERT: ")
        if kind is None:
            if not record.getMessage().startswith("ALERT:"):
                return
            kind = "alert"
        subject = str(getattr(record, "alert_subject", "") or message)
        tier = tier_of(record)
        a = {
            "tier": tier,
            "kind": kind,
            "subject": subject,
            "message": message,
            "time": record.created,
            "host": self.host,
        }
        self.recent = [*self.recent[-49:], a]
        if TIERS.index(tier) < TIERS.index(self.min_tier):
            return
        key, now = (kind, subject), time.monotonic()
        if key in self._last and now - self._last[key] < self.cooldown_s:
            self.suppressed += 1
            return
        self._last[key] = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a command's start-up): logged only
        task = loop.create_task(self._send(a))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, a: dict[str, Any]) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for hook in self.hooks:
                try:
                    async with session.post(
                        hook.url,
                        data=json.dumps(hook.payload(a), default=str),
                        headers={"Content-Type": "application/json"},
                    ) as r:
                        if r.status >= 300:
                            raise aiohttp.ClientError(f"HTTP {r.status}")
                    self.sent += 1
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:  # a channel down
                    self.failed += 1
                    # not through the "keeper" logger: that would alert about alerting
                    logging.getLogger("keeper_alerts").warning("webhook %s failed: %s", hook.name, type(exc).__name__)

    async def flush_async(self) -> None:
        """Wait for the notifications in flight (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def install(hooks: list[Webhook], *, min_tier: str, cooldown_s: float) -> AlertHandler:
    """Attach an AlertHandler to the keeper's loggers (replacing one attached before)."""
    logger = logging.getLogger(ALERT_LOGGER)
    for h in [h for h in logger.handlers if isinstance(h, AlertHandler)]:
        logger.removeHandler(h)
    handler = AlertHandler(hooks, min_tier=min_tier, cooldown_s=cooldown_s)
    logger.addHandler(handler)
    return handler
