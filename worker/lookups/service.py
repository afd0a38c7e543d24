"""One look-up, whatever the interface: who is asking, may they, which access policy routes it, the answer, the
audit. The HTTP endpoints and the MCP tools both call ``LookupService.run``.

In order: the parameters, made into one look-up (``Plan``: normalized values; what is wrong is answered 422,
after the caller is known); ``begin_lookup`` — one round trip: the key or user, its rate (429), the store (another
organization's store is "unknown", as a store that does not exist: 404), the key's scope (403), the store's
policy for the resource, and with it, for ``sync``, the answer from the synced tables, for ``api_only`` the
store's sealed credentials; ``not_allowed`` answers 403 naming the policy; ``api_only`` asks the platform through
its connector's ``LiveLookups`` (the store's credentials, the shared per-store limiter, nothing kept). All of it
within the time budget (504 past it). Then one audit row (never the values asked for, never the answer) and one
log line (the same facts). An answer whose audit row cannot be written is not given (503).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from worker.config import Settings
from worker.connectors import registry
from worker.connectors.contract import LiveLookups, LiveStore
from worker.connectors.rest import PlatformHttpError
from worker.db.port import Database
from worker.errors import ConfigError, DatabaseError, NeedsReauthError, PermanentError, RetryableError
from worker.jobs.registry import JobContext
from worker.lookups.keys import Caller
from worker.lookups.models import StoreInfo, StoresAnswer
from worker.lookups.normalize import BadInput
from worker.lookups.operations import OPERATIONS, Operation, Plan
from worker.lookups.settings import LookupSettings
from worker.rpc import lookups as lookup_rpc
from worker.web.metrics import WebMetrics

__all__ = ["LookupFailure", "LookupService", "live_lookups_of", "validation_message"]

log = logging.getLogger("shopsync.lookups")

_UNAUTHENTICATED = {
    "no_caller": "a look-up needs an API key or a signed-in user's access token",
    "unknown_key": "unknown API key",
    "revoked_key": "this API key was revoked: ask an owner or admin of the organization for a new one",
    "expired_key": "this API key has expired: ask an owner or admin of the organization for a new one",
}


class LookupFailure(Exception):
    """A look-up that is not answered: the HTTP status, a message for the caller (never a value it asked for)
    and the audit's outcome. ``extra`` goes into the error body (e.g. the policy that refused)."""

    def __init__(self, status: int, detail: str, *, outcome: str = "refused", headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.outcome = outcome
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


@dataclass
class _Trace:
    """What the audit row and the log line say about one look-up."""

    lookup: str
    resource: str | None
    user_id: UUID | None
    organization_id: Any = None
    key_id: Any = None
    store_id: Any = None
    policy: str | None = None
    count: int = 0
    notes: dict[str, str] = field(default_factory=dict)


def validation_message(exc: ValidationError) -> str:
    """Where each problem is and what is wrong — without pydantic's echo of the value."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)[:1000]


def live_lookups_of(platform: str) -> tuple[str, LiveLookups | None]:
    """(display name, its live look-ups) of a platform's connector; ("", None) for a platform without one."""
    try:
        contract = registry.connector(platform).contract
    except KeyError:
        return "", None
    return contract.display_name, contract.lookups


def _store_id(arguments: Mapping[str, Any]) -> UUID | None:
    value = arguments.get("store_id")
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value)) if isinstance(value, str) else None
    except ValueError:
        return None


class LookupService:
    def __init__(self, db: Database, core: Settings, settings: LookupSettings, *, worker_id: str = "lookups",
                 metrics: WebMetrics | None = None) -> None:
        self.db = db
        self.core = core
        self.settings = settings
        self.worker_id = worker_id
        self.metrics = metrics       # the web process's (None under `shopsync mcp`: nothing scrapes stdio)

    async def run(self, caller: Caller, name: str, arguments: Mapping[str, Any], *, interface: str) -> BaseModel:
        """The answer, or ``LookupFailure``. Every call that can be tied to an organization is audited."""
        started = time.perf_counter()
        op = OPERATIONS.get(name)
        if op is None:
            raise LookupFailure(404, f"no look-up named {name[:40]!r}; see list_stores and the OpenAPI document")
        trace = _Trace(lookup=name, resource=op.resource, user_id=caller.user_id)
        answer: BaseModel | None = None
        failure: LookupFailure | None = None
        budget = self.settings.timeout_seconds
        try:
            async with asyncio.timeout(budget):
                answer = await self._run(op, caller, arguments, trace)
        except LookupFailure as exc:
            failure = exc
        except TimeoutError:
            failure = LookupFailure(504, f"the look-up took longer than its {budget:g} s budget and was stopped; "
                                         "try again, or narrow it", outcome="timeout")
        except DatabaseError as exc:
            if not exc.outage:
                log.error("lookup %s: database error %s", trace.lookup, exc.sqlstate)
            failure = LookupFailure(503, "the database is unavailable; retry shortly", outcome="failed",
                                    headers={"Retry-After": "1"}) if exc.outage else \
                LookupFailure(500, "internal error while looking up", outcome="failed")
        except Exception as exc:  # noqa: BLE001 - answered 500; only the type is logged (messages may hold values)
            log.error("lookup %s failed unexpectedly: %s", trace.lookup, type(exc).__name__)
            failure = LookupFailure(500, "internal error while looking up", outcome="failed")
        await self._finish(trace, failure, interface, started)
        if failure is not None:
            raise failure
        assert answer is not None
        return answer

    # --- routing -------------------------------------------------------------------------------------------
    async def _run(self, op: Operation, caller: Caller, arguments: Mapping[str, Any], trace: _Trace) -> BaseModel:
        store_id = _store_id(arguments) if op.resource is not None else None
        plan: Plan | None = None
        invalid: LookupFailure | None = None
        try:
            params = op.params.model_validate(dict(arguments))
            plan = op.plan(params, self.settings.default_phone_region) if op.plan is not None else None
        except ValidationError as exc:
            invalid = LookupFailure(422, validation_message(exc), outcome="invalid")
        except BadInput as exc:
            invalid = LookupFailure(422, str(exc), outcome="invalid")
        # who is asking, may they, the policy — and for a synced store the answer too: one round trip
        ctx = await lookup_rpc.begin_lookup(
            self.db, store_id=store_id, resource=op.resource, key_hash=caller.key_hash, user_id=caller.user_id,
            user_requests_per_second=self.settings.user_requests_per_second, user_burst=self.settings.user_burst,
            lookup=plan.lookup if plan is not None else None, values=plan.synced_values if plan is not None else None,
            limit=plan.limit if plan is not None else 10)
        trace.organization_id, trace.key_id = ctx["organization_id"], ctx["key_id"]
        refusal = ctx["refusal"]
        if refusal in _UNAUTHENTICATED:
            raise LookupFailure(401, _UNAUTHENTICATED[refusal],
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if refusal == "rate_limited":
            wait = max(1, math.ceil(float(ctx["retry_after"] or 1)))
            raise LookupFailure(429, f"too many look-ups: this caller's rate is used up; retry in {wait} s",
                                outcome="rate_limited", headers={"Retry-After": str(wait)})
        if refusal is None and store_id is not None:
            trace.store_id = store_id
        if invalid is not None:
            raise invalid
        if op.plan is None:
            return await self._stores(caller, trace)
        assert plan is not None
        if refusal == "unknown_store":
            raise LookupFailure(404, f"unknown store {store_id}")
        trace.store_id = store_id
        if refusal == "resource_not_in_scope":
            raise LookupFailure(403, f"this API key may not look up {op.resource}", extra={"resource": op.resource})
        trace.lookup, trace.policy = plan.lookup, ctx["policy"]
        if ctx["policy"] == "not_allowed":
            raise LookupFailure(403, f"the store's access policy for {plan.resource} is not_allowed: shopsync answers "
                                     f"no look-ups about its {plan.resource}",
                                extra={"policy": "not_allowed", "resource": plan.resource})
        if ctx["policy"] == "sync":
            rows: Mapping[str, Any] = ctx["answer"] or {}
            source = "synced"
        else:
            rows = await self._live(ctx, plan, store_id)
            source = "live"
        assert op.items is not None
        field_name, build = op.items
        items = build(rows)
        trace.count = len(items)
        return op.answer.model_validate({"store_id": store_id, "lookup": plan.lookup, "policy": ctx["policy"],
                                         "source": source, "count": len(items), field_name: items})

    async def _live(self, ctx: Mapping[str, Any], plan: Plan, store_id: UUID | None) -> Mapping[str, Any]:
        platform = str(ctx["platform"])
        name, lookups = live_lookups_of(platform)
        query = lookups.query(plan.lookup) if lookups is not None else None
        if query is None:
            why = (lookups.why_not.get(plan.lookup) if lookups is not None else None) or "its API has no such search"
            raise LookupFailure(422, f"{name or platform} cannot answer {plan.lookup} live ({why}), and this "
                                     f"store's policy for {plan.resource} is api_only, so shopsync keeps no copy to "
                                     "answer from",
                                outcome="unsupported",
                                extra={"live_lookups": list(lookups.available) if lookups is not None else []})
        if ctx["store_status"] != "active":
            raise LookupFailure(409, f"the store is {ctx['store_status']}: a live look-up needs it connected",
                                outcome="failed")
        assert store_id is not None
        store = LiveStore(store_id=store_id, organization_id=UUID(str(ctx["organization_id"])),
                          shop_key=str(ctx["shop_key"]),
                          context=JobContext(db=self.db, settings=self.core, worker_id=self.worker_id),
                          credentials=ctx["credentials"])
        try:
            return await query(store, plan.live_value, plan.limit)
        except NeedsReauthError:
            raise LookupFailure(502, f"{name} refused the store's credentials: the store must be connected again",
                                outcome="failed") from None
        except PlatformHttpError as exc:
            raise LookupFailure(502, f"{name} refused the look-up (HTTP {exc.status})", outcome="failed") from None
        except (RetryableError, PermanentError) as exc:
            raise LookupFailure(502, f"{name} did not answer the look-up ({type(exc).__name__}); try again",
                                outcome="failed") from None
        except ConfigError:
            raise LookupFailure(503, f"{name} is not configured on this server", outcome="failed") from None

    async def _stores(self, caller: Caller, trace: _Trace) -> StoresAnswer:
        rows = await lookup_rpc.lookup_stores(self.db, key_hash=caller.key_hash, user_id=caller.user_id)
        stores = []
        for row in rows:
            _, lookups = live_lookups_of(str(row["platform"]))
            stores.append(StoreInfo(store_id=row["store_id"], platform=row["platform"], shop_key=row["shop_key"],
                                    display_name=row["display_name"], status=row["status"],
                                    policies=dict(row["policies"] or {}),
                                    live_lookups=list(lookups.available) if lookups is not None else []))
        trace.count = len(stores)
        return StoresAnswer(count=len(stores), stores=stores)

    # --- audit ------------------------------------------------------------------------------------------------
    async def _finish(self, trace: _Trace, failure: LookupFailure | None, interface: str, started: float) -> None:
        latency = (time.perf_counter() - started) * 1000
        outcome, status = ("answered", 200) if failure is None else (failure.outcome, failure.status)
        log.info("lookup %s %s store=%s resource=%s policy=%s outcome=%s status=%d results=%d %.1f ms", interface,
                 trace.lookup, trace.store_id, trace.resource, trace.policy, outcome, status, trace.count, latency)
        unaudited = False
        if trace.organization_id is not None:   # else a caller no organization owns (no valid key, a user asking
            try:                                # about a store not theirs): nothing to audit it under
                await lookup_rpc.record_lookup(
                    self.db, organization_id=trace.organization_id, interface=interface, lookup=trace.lookup,
                    outcome=outcome, status=status, latency_ms=latency, store_id=trace.store_id, key_id=trace.key_id,
                    user_id=trace.user_id, resource=trace.resource, policy=trace.policy, result_count=trace.count)
            except Exception as exc:  # noqa: BLE001 - an unaudited answer is not given
                log.error("lookup %s could not be audited: %s", trace.lookup, type(exc).__name__)
                unaudited = failure is None
        if self.metrics is not None:
            self.metrics.lookup(trace.lookup, trace.policy, "failed" if unaudited else outcome, latency / 1000)
        if unaudited:
            raise LookupFailure(503, "the look-up could not be recorded in the audit, so it is not answered; "
                                     "try again", outcome="failed")
