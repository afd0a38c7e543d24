"""The connector contract: everything the core relies on, declared by each platform in one typed object.

A platform package exposes ``CONNECTOR``, whose ``contract`` is a ``ConnectorContract``:

- ``reads``: the catalog resources it syncs and the synced tables its sync writes for each (checked
  against the database's catalog at start);
- ``sync``: its ``SyncSource`` — the core runs it as ``<platform>.sync``;
- ``webhooks``: the web route that verifies deliveries (``WebhookSpec.verify``), the topics and the
  resource each changes, how an inbox event is applied (``<platform>.webhook``), how the store's
  subscriptions are kept right (``<platform>.check_webhooks``) and removed when a user disconnects the
  store (``<platform>.disconnect``, which then deletes its credentials);
- ``connect``: how a store gets connected (``ConnectFlow``), its routes, and — for flows that park an
  install until an organization claims it — the ``<platform>.install_claimed`` handler;
- ``writes``: the write capabilities it offers flows between stores, and ``open_writer``: the session that
  implements them for one target store (``worker.connectors.writes``);
- ``jobs``: job kinds of its own (``<platform>.<name>``), ``routes``: other web routes, and
  ``public_config``: non-secret facts published to the database at start;
- ``lookups``: the look-ups it can answer live from the platform (``LiveLookups``), for agents asking about
  stores whose access policy keeps no copy (``api_only``); None when it answers none.

The core registers the standard job kinds from it (``StandardJob``). A contract missing a part its flow
needs is refused when it is built; at start, every job kind SQL can enqueue (``shopsync.job_kinds()``)
is checked against the registered handlers, so nothing queues forever unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from worker.config import Settings
from worker.jobs.registry import Handler, Job, JobContext
from worker.sync.engine import SyncSource

__all__ = ["ApplyEvent", "CanonicalRows", "CheckWebhooks", "ConnectFlow", "ConnectSpec", "ConnectorContract",
           "ContractError", "Delivery", "LiveLookups", "LiveQuery", "LiveStore", "OpenWriter", "StandardJob",
           "WebhookSpec", "WebhookVerifier", "WriteCapability"]

PLATFORM_NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")     # as shopsync.stores.platform allows


class ContractError(ValueError):
    """A connector's declaration lacks a part it must have; the message names the connector and the part."""


class StandardJob(StrEnum):
    """The job kinds the core enqueues for every platform, as ``<platform>.<kind>``."""

    SYNC = "sync"                        # request_sync: syncs by hand, on schedule, after connecting
    WEBHOOK = "webhook"                  # record_webhook: apply one inbox delivery
    CHECK_WEBHOOKS = "check_webhooks"    # enqueue_periodic_checks: keep the store's subscriptions right
    INSTALL_CLAIMED = "install_claimed"  # claim_pending_install: finish connecting a claimed install
    DISCONNECT = "disconnect"            # disconnect_store: remove our webhooks, then forget the credentials


class WriteCapability(StrEnum):
    """What a target store can be asked to do by flows between stores."""

    CREATE_ORDER = "create_order"
    CANCEL_ORDER = "cancel_order"
    CREATE_FULFILLMENT = "create_fulfillment"
    SET_INVENTORY = "set_inventory"
    SET_PRICE = "set_price"


class ConnectFlow(StrEnum):
    OAUTH = "oauth"                        # begin_install → the platform's consent → callback → parked, claimed
    PLATFORM_INSTALL = "platform_install"  # the platform calls us (app store); parked until claimed
    API_KEYS = "api_keys"                  # a signed-in user posts the store's keys to a route of ours

    @property
    def parks_installs(self) -> bool:
        return self is not ConnectFlow.API_KEYS


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery whose authenticity the platform's verifier checked, ready for the inbox.

    Addressed to one store (``store_id``, e.g. from the URL) or to a shop (``shop_key``: the store is
    looked up). ``unknown_shop_ok`` answers 200 instead of 404 when no store has the shop (compliance
    and uninstall topics for a shop whose data is already gone)."""

    topic: str
    delivery_id: str
    payload: Mapping[str, Any]
    store_id: UUID | None = None
    shop_key: str | None = None
    event_id: str | None = None
    triggered_at: datetime | None = None
    unknown_shop_ok: bool = False

    def __post_init__(self) -> None:
        if (self.store_id is None) == (self.shop_key is None):
            raise ValueError("a delivery names either a store_id or a shop_key")


# Checks a delivery (signature first, constant time; then headers and body) and returns it, or the
# answer the platform gets (401 bad signature, 400 malformed, 200 for a ping, ...).
WebhookVerifier = Callable[[Request, bytes], Awaitable["Delivery | Response"]]
# Applies one inbox event (get_webhook's row); returns the inbox status to record (processed /
# ignored), or None when it recorded it itself in the same transaction as the rows.
ApplyEvent = Callable[[Job, JobContext, Mapping[str, Any]], Awaitable["str | None"]]
# Keeps one active store's webhook subscriptions right (check), or removes every one of ours (remove, for
# a store a user disconnected; its credentials are still there); gets get_store's row, returns a summary.
CheckWebhooks = Callable[[Job, JobContext, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
# Opens a write session on one target store (get_store's row) implementing the declared WriteCapabilities
# (worker.connectors.writes: set_prices, set_inventory, read_group).
OpenWriter = Callable[[JobContext, Mapping[str, Any]], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class WebhookSpec:
    """``path``: the route under ``/<platform>`` (e.g. ``/webhooks`` or ``/webhooks/{store_id}``).
    ``topics``: every topic the platform sends → the catalog resource it changes, or None for topics that
    change no synced data (uninstall, compliance); an event whose resource is not synced for its store,
    or whose store is not active, is ignored by the core before ``apply`` sees it. ``remove`` deletes the
    subscriptions ``check`` made (raising ``RetryableError`` while the store cannot be reached)."""

    path: str
    verify: WebhookVerifier
    topics: Mapping[str, str | None]
    apply: ApplyEvent
    check: CheckWebhooks
    remove: CheckWebhooks


@dataclass(frozen=True)
class ConnectSpec:
    flow: ConnectFlow
    routes: Sequence[BaseRoute] = ()
    install_claimed: Handler | None = None


# Canonical rows by synced table ({"customers": [...]}), as the connector's mapping makes them for its sync.
CanonicalRows = Mapping[str, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class LiveStore:
    """The store a live look-up reads, and what reaches it: ``context.db`` (its sealed credentials, the shared
    per-store limiter) and ``context.settings`` (the sealing keys), as a job of the connector has them.
    ``credentials``: the store's sealed credentials row (as ``get_store_credentials`` gives it), read with the
    look-up's routing so the connector need not read it again; None: read it yourself."""

    store_id: UUID
    organization_id: UUID
    shop_key: str
    context: JobContext
    credentials: Mapping[str, Any] | None = None


# (store, value, limit) → the rows found (at most ``limit`` of the look-up's main table). Nothing is written.
LiveQuery = Callable[[LiveStore, str, int], Awaitable[CanonicalRows]]


@dataclass(frozen=True)
class LiveLookups:
    """What a platform can look up live. Each is an async ``LiveQuery``, or None when the platform's API cannot
    do it (the core then says so). Values arrive normalized: an email lowercased and trimmed, a phone number in
    E.164 (``+36301234567``), a customer or order id as the synced rows hold it, an order number without ``#``,
    the words of a product search separated by spaces (each must match). Answers are rows of the look-up's
    tables: ``customers``; ``orders``, ``order_line_items``, ``order_fulfillments``; ``products``,
    ``product_variants`` (a SKU look-up: only the matching variants). ``why_not``: for a look-up left None, why
    the platform cannot do it, when "its API has no such search" would mislead (the 422 says it)."""

    customers_by_email: LiveQuery | None = None
    customers_by_phone: LiveQuery | None = None
    orders_by_customer: LiveQuery | None = None
    orders_by_email: LiveQuery | None = None
    orders_by_phone: LiveQuery | None = None
    orders_by_number: LiveQuery | None = None
    order_by_id: LiveQuery | None = None
    variants_by_sku: LiveQuery | None = None
    products_by_text: LiveQuery | None = None
    why_not: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        offered = set(self.why_not) & set(self.available)
        unknown = set(self.why_not) - set(self.names())
        if offered or unknown:
            raise ContractError(f"LiveLookups.why_not names look-ups it offers or that do not exist: "
                                f"{', '.join(sorted(offered | unknown))}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name != "why_not")

    def query(self, name: str) -> LiveQuery | None:
        """The look-up called ``name`` (one of ``names()``), or None when the platform cannot do it."""
        found: LiveQuery | None = getattr(self, name) if name in self.names() else None
        return found

    @property
    def available(self) -> tuple[str, ...]:
        return tuple(n for n in self.names() if getattr(self, n) is not None)


@dataclass(frozen=True)
class ConnectorContract:
    platform: str
    display_name: str
    reads: Mapping[str, Sequence[str]]     # catalog resource → the synced tables its sync writes
    sync: SyncSource
    webhooks: WebhookSpec
    connect: ConnectSpec
    writes: frozenset[WriteCapability] = frozenset()
    open_writer: OpenWriter | None = None       # required with writes: the session implementing them
    jobs: Mapping[str, Handler] = field(default_factory=dict)   # name → handler, run as <platform>.<name>
    routes: Sequence[BaseRoute] = ()
    public_config: Callable[[Settings], Mapping[str, Any] | None] = lambda _core: None
    lookups: LiveLookups | None = None

    def __post_init__(self) -> None:
        def refuse(part: str) -> ContractError:
            return ContractError(f"connector {self.platform!r} ({self.display_name}): {part}")

        if not PLATFORM_NAME.match(self.platform):
            raise refuse("platform must match ^[a-z][a-z0-9_]{1,31}$")
        if not self.reads:
            raise refuse("reads names no resource: a connector syncs at least one catalog resource")
        if not self.webhooks.topics:
            raise refuse("webhooks.topics is empty")
        unread = {r for r in self.webhooks.topics.values() if r is not None} - set(self.reads)
        if unread:
            raise refuse(f"webhook topics change resources it does not read: {', '.join(sorted(unread))}")
        if self.connect.flow.parks_installs and self.connect.install_claimed is None:
            raise refuse(f"connect flow {self.connect.flow.value!r} parks installs, so it needs an "
                         f"install_claimed handler ({self.job_kind(StandardJob.INSTALL_CLAIMED)})")
        if self.writes and self.open_writer is None:
            raise refuse(f"writes {sorted(w.value for w in self.writes)} need an open_writer that implements them")
        standard = {k.value for k in StandardJob}
        clash = standard & set(self.jobs)
        if clash:
            raise refuse(f"jobs {sorted(clash)} are standard kinds: declare them through their part instead")

    def job_kind(self, kind: StandardJob | str) -> str:
        """``<platform>.<kind>``: how a job of this connector is named in ``shopsync.jobs``."""
        return f"{self.platform}.{kind}"
