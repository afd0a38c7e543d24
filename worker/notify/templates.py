"""Messages from templates: Jinja2, an HTML and a plain-text body and a subject per message kind, HTML
autoescaped, times in the organization's time zone, links back to the app (``SHOPSYNC_NOTIFY_APP_URL``).
Webhook channels get JSON instead (``webhook_body``).

Templates live in ``worker/notify/templates/``; a file of the same name in ``SHOPSYNC_NOTIFY_TEMPLATES_DIR``
replaces the built-in one. Each gets the context ``message_context`` builds (docs/notifications.md lists it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from worker.db.values import as_datetime

__all__ = ["Rendered", "message_context", "render", "webhook_body"]

SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}
MAX_SUBJECT = 200


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(value: Any, zone: str | None, with_zone: bool = True) -> str:
    moment = as_datetime(value) if value is not None else None
    if moment is None:
        return ""
    local = moment.astimezone(_zone(zone))
    return local.strftime("%Y-%m-%d %H:%M" + (" %Z" if with_zone else ""))


def _headline(e: Mapping[str, Any]) -> str:
    """One line per event, by type; types without a line here (flows, links) show their description. Plain
    text: the HTML templates escape it."""
    d: Mapping[str, Any] = e.get("details") or {}
    store = e.get("store") or "a store"
    kind = e.get("type")
    reason = f" ({_detail(d['reason'])})" if d.get("reason") else ""
    if kind == "job.dead":
        resource = f" ({d['resource']})" if d.get("resource") else ""
        error = f": {_detail(d['error'])}" if d.get("error") else ""
        attempts = d.get("attempts", "?")
        return f"{d.get('kind', e.get('subject'))}{resource} failed for good after {attempts} attempt(s){error}"
    if kind == "store.needs_reauth":
        return f"{store} must be connected again{reason}"
    if kind == "store.uninstalled":
        return f"the app was uninstalled from {store}{reason}"
    if kind == "sync.record_errors":
        return f"{d.get('failed', '?')} {e.get('subject') or ''} record(s) could not be stored in a sync of {store}"
    if kind == "webhooks.recreated":
        topics = f": {', '.join(str(t) for t in d.get('topics') or [])}" if d.get("topics") else ""
        return f"{d.get('count', '?')} webhook subscription(s) of {store} were dropped by " \
               f"{d.get('platform', 'the platform')} and created again{topics}"
    if kind == "notification.channel_failing":
        return f"notification channel {e.get('subject')} stopped: {_detail(d.get('reason', 'the provider refused'))}"
    if kind == "summary.daily":
        return f"daily summary for {e.get('subject')}"
    subject = f": {e.get('subject')}" if e.get("subject") else ""
    where = f" ({e.get('store')})" if e.get("store") else ""
    return f"{e.get('description', kind)}{subject}{where}"


def _window(notification: Mapping[str, Any], zone: str | None) -> str:
    """``2026-12-07 17:52:30 to 17:52:40 CET`` (the date once when both ends share it)."""
    start, end = as_datetime(notification.get("window_start")), as_datetime(notification.get("window_end"))
    if start is None or end is None:
        return ""
    start, end = start.astimezone(_zone(zone)), end.astimezone(_zone(zone))
    tail = end.strftime("%H:%M:%S %Z" if end.date() == start.date() else "%Y-%m-%d %H:%M:%S %Z")
    return f"{start:%Y-%m-%d %H:%M:%S} to {tail}"


def _detail(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(", ", ": "))
    return text if len(text) <= 300 else text[:297] + "..."


@lru_cache(maxsize=8)
def _environment(templates_dir: str | None) -> Environment:
    loaders: list[BaseLoader] = [PackageLoader("worker.notify", "templates")]
    if templates_dir:
        loaders.insert(0, FileSystemLoader(templates_dir))
    env = Environment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False,
                                                   default=False))
    env.filters["local"] = _local
    env.filters["detail"] = _detail
    env.filters["window"] = _window
    env.filters["headline"] = _headline
    return env


def _event(raw: Mapping[str, Any], links: str, types: Mapping[str, Any]) -> dict[str, Any]:
    details = raw.get("details") if isinstance(raw.get("details"), Mapping) else {}
    store_id = raw.get("store_id")
    return {**raw, "details": dict(details or {}),
            "description": (types.get(str(raw.get("type"))) or {}).get("description", str(raw.get("type"))),
            "store": raw.get("store") or "", "store_url": f"{links}/stores/{store_id}" if store_id else None}


def message_context(data: Mapping[str, Any], *, links: str, max_listed: int) -> dict[str, Any]:
    """What the templates see: ``organization``, ``channel``, ``notification`` (with ``url``), ``events``
    (listed, at most ``max_listed``), ``omitted``, ``sections`` (per type, most severe first: ``type``,
    ``description``, ``severity``, ``count``, ``events``), ``counts`` (type → count), ``summary`` (a daily
    summary's figures, else None), ``app_url``."""
    types: Mapping[str, Any] = data.get("types") or {}
    notification = {"kind": "events", "event_count": 0, "window_start": None, "window_end": None,
                    **(data.get("notification") or {})}
    notification["url"] = f"{links}/notifications/{notification.get('id')}"
    all_events = [_event(e, links, types) for e in data.get("events") or []]
    listed = all_events[:max_listed]
    counts = Counter(str(e["type"]) for e in all_events)
    severities = {str(e["type"]): str(e["severity"]) for e in all_events}
    sections = [{"type": t, "description": (types.get(t) or {}).get("description", t), "severity": severities[t],
                 "count": n, "events": [e for e in listed if e["type"] == t]}
                for t, n in sorted(counts.items(), key=lambda kv: (SEVERITY_ORDER.get(severities[kv[0]], 9), kv[0]))]
    summary = all_events[0] if len(all_events) == 1 and all_events[0]["type"] == "summary.daily" else None
    return {"organization": dict(data.get("organization") or {}), "channel": dict(data.get("channel") or {}),
            "notification": notification, "events": listed, "omitted": len(all_events) - len(listed),
            "sections": sections, "counts": dict(counts), "summary": summary, "app_url": links,
            "time_zone": (data.get("organization") or {}).get("time_zone") or "UTC"}


def template_kind(context: Mapping[str, Any]) -> str:
    if context["notification"].get("kind") == "test":
        return "test"
    return "summary" if context["summary"] is not None else "events"


def render(context: Mapping[str, Any], *, templates_dir: Path | None = None) -> Rendered:
    env = _environment(str(templates_dir) if templates_dir else None)
    kind = template_kind(context)
    subject = " ".join(env.get_template("subject.txt").render(**context, kind=kind).split())
    if len(subject) > MAX_SUBJECT:
        subject = subject[:MAX_SUBJECT - 1] + "…"
    return Rendered(subject=subject, text=env.get_template(f"{kind}.txt").render(**context),
                    html=env.get_template(f"{kind}.html").render(**context))


def _payload_type(context: Mapping[str, Any]) -> str:
    if context["notification"].get("kind") == "test":
        return "notification.test"
    types: Sequence[str] = list(context["counts"])
    return types[0] if len(types) == 1 else "events.mixed"


def webhook_body(context: Mapping[str, Any]) -> bytes:
    """A webhook channel's JSON (Standard Webhooks' ``type``/``timestamp``/``data`` shape). Built only from
    what the message froze, so every retry sends the same bytes."""
    n = context["notification"]
    created = as_datetime(n.get("created_at")) or datetime.now(UTC)
    keep = ("id", "type", "severity", "store_id", "store", "platform", "subject", "details", "occurred_at")
    return orjson.dumps({
        "type": _payload_type(context),
        "timestamp": created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "notification_id": n.get("id"), "kind": n.get("kind"), "severity": n.get("severity"),
            "event_count": n.get("event_count"), "window_start": n.get("window_start"),
            "window_end": n.get("window_end"), "url": n.get("url"),
            "organization": {k: context["organization"].get(k) for k in ("id", "name")},
            "channel": {k: context["channel"].get(k) for k in ("id", "name")},
            "events": [{k: e.get(k) for k in keep} for e in context["events"]],
            "events_omitted": context["omitted"],
        },
    }, default=str)
