"""`shopsync dev`: the embedded default. A project-local PostgreSQL (15 with pg_cron when installed, or the
server ``SHOPSYNC_PG_BINDIR`` points at), migrations, the web process and a worker, with a sealing key
generated once for this checkout, plus the four platform sandboxes, each with a demo store a demo user
connects the way a merchant would: Shopify through OAuth (``begin_install`` → authorize → callback → claim),
WooCommerce with REST keys through ``POST /woocommerce/connect`` (a Supabase-style user token), ShopRenter
through its signed install, entry and claim, TikTok Shop through its consent page — and the TikTok shop
auto-linked to the Shopify store by SKU (``tiktok_demo``) — so a fresh checkout shows four stores connected and
synced, and links pushing. A local SMTP sink (aiosmtpd) keeps the mail the demo organization's notification
channel sends (``.shopsync/mail/``).
Everything lives under ``.shopsync/``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import jwt
import psycopg
from psycopg.rows import dict_row

from sandbox import shoprenter as sr
from sandbox.mail_sink import MailSink
from sandbox.shopify import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SHOP
from sandbox.tiktok import TtShop, serve_tiktok_sandbox
from sandbox.woocommerce import WooDatasetSpec, WooSandbox, serve_woocommerce_sandbox
from worker.dev import tiktok_demo
from worker.dev.localpg import LocalPostgres, server_version
from worker.migrate import migrate
from worker.sealing import generate_key_spec

__all__ = ["run_dev"]

STATE_DIR = Path(".shopsync")
DB_NAME = "shopsync"
WEB_PORT = int(os.environ.get("SHOPSYNC_DEV_PORT", "8080"))
SANDBOX_PORT = int(os.environ.get("SHOPSYNC_DEV_SANDBOX_PORT", "8081"))
WOO_PORT = int(os.environ.get("SHOPSYNC_DEV_WOOCOMMERCE_PORT", "8082"))
SHOPRENTER_PORT = int(os.environ.get("SHOPSYNC_DEV_SHOPRENTER_PORT", "8083"))
SMTP_PORT = int(os.environ.get("SHOPSYNC_DEV_SMTP_PORT", "8025"))
MAIL_DIR = STATE_DIR / "mail"
DEMO_CHANNEL = "Local mail sink (make dev)"
DEMO_USER = "dev@shopsync.local"
SYNC_TIMEOUT = 120.0


def _say(msg: str) -> None:
    print(f"[shopsync dev] {msg}", flush=True)


def _dev_env(pg: LocalPostgres) -> dict[str, str]:
    STATE_DIR.mkdir(exist_ok=True)
    key_file = STATE_DIR / "sealing.key"
    if not key_file.exists():
        key_file.write_text(generate_key_spec() + "\n")
        key_file.chmod(0o600)
    jwt_file = STATE_DIR / "jwt.secret"      # stands in for the Supabase project's JWT secret
    if not jwt_file.exists():
        jwt_file.write_text(secrets.token_urlsafe(48) + "\n")
        jwt_file.chmod(0o600)
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": pg.dsn(DB_NAME),
        "SHOPSYNC_SEALING_KEYS": key_file.read_text().strip(),
        "SHOPSYNC_LOCAL_DEV": "true",
        "SHOPSYNC_PORT": str(WEB_PORT),
        "PORT": str(WEB_PORT),
        "SHOPSYNC_HOST": "127.0.0.1",
        "SHOPSYNC_PUBLIC_URL": f"http://127.0.0.1:{WEB_PORT}",
        "SHOPSYNC_POLL_INTERVAL": "1",
        # a local frontend (e.g. Vite or Next on port 3000 or 5173) may call the browser routes
        "SHOPSYNC_CORS_ORIGINS": "http://localhost:3000,http://127.0.0.1:3000,http://localhost:5173,"
                                 "http://127.0.0.1:5173",
        # the Shopify sandbox stands in for Shopify: its demo app's credentials, its per-shop base URL
        "SHOPSYNC_SHOPIFY_CLIENT_ID": DEMO_CLIENT_ID,
        "SHOPSYNC_SHOPIFY_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "SHOPSYNC_SHOPIFY_SHOP_BASE_URL": f"http://127.0.0.1:{SANDBOX_PORT}/shops/{{shop}}",
        "SUPABASE_JWT_SECRET": jwt_file.read_text().strip(),
        # the ShopRenter sandbox: its demo app, token endpoint and per-shop API
        "SHOPSYNC_SHOPRENTER_CLIENT_ID": sr.DEMO_CLIENT_ID,
        "SHOPSYNC_SHOPRENTER_CLIENT_SECRET": sr.DEMO_CLIENT_SECRET,
        "SHOPSYNC_SHOPRENTER_OAUTH_BASE_URL": f"http://127.0.0.1:{SHOPRENTER_PORT}/oauth",
        "SHOPSYNC_SHOPRENTER_API_BASE_URL": f"http://127.0.0.1:{SHOPRENTER_PORT}/shops/{{shop}}/api",
        **tiktok_demo.tiktok_env(WEB_PORT),     # the TikTok sandbox stands in for TikTok Shop's three hosts
    })
    return env


class _DemoUser:
    """The demo merchant: signed up once (the sign-up trigger gives a personal organization)."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn
        user = conn.execute("select id from auth.users where email = %s", (DEMO_USER,)).fetchone()
        if user is None:
            user = conn.execute("insert into auth.users (id, email) values (gen_random_uuid(), %s) returning id",
                                (DEMO_USER,)).fetchone()
        assert user is not None
        self.id = user["id"]
        with self.session():
            org = conn.execute("select organization_id from shopsync.my_organizations() limit 1").fetchone()
        assert org is not None
        self.org = org["organization_id"]

    @contextmanager
    def session(self) -> Iterator[None]:
        """A transaction as the frontend's signed-in user (the role and JWT claims PostgREST sets)."""
        claims = json.dumps({"sub": str(self.id), "role": "authenticated"})
        with self.conn.transaction():
            self.conn.execute("select set_config('role', 'authenticated', true), "
                              "set_config('request.jwt.claims', %s, true)", (claims,))
            yield

    def access_token(self, jwt_secret: str) -> str:
        """What Supabase Auth hands the frontend after sign-in."""
        now = int(time.time())
        return jwt.encode({"sub": str(self.id), "aud": "authenticated", "role": "authenticated", "email": DEMO_USER,
                           "iat": now, "exp": now + 3600}, jwt_secret, algorithm="HS256")

    def claim(self, location: str) -> None:
        """The frontend lands with ``#install_id&claim_token`` and claims the install."""
        parked = dict(parse_qsl(urlsplit(location).fragment))
        with self.session():
            self.conn.execute("select shopsync.claim_pending_install(%s, %s, %s)",
                              (parked["install_id"], parked["claim_token"], self.org))


def _install_shopify(user: _DemoUser) -> str:
    """begin_install (the frontend RPC), approve on (sandbox) Shopify, land on our callback, claim."""
    with user.session():
        row = user.conn.execute("select shopsync.begin_install(%s, 'shopify', %s) as r",
                                (user.org, DEMO_SHOP)).fetchone()
    assert row is not None
    approved = httpx.get(row["r"]["authorize_url"], timeout=10)          # the merchant clicks Install
    landed = httpx.get(approved.headers["location"], timeout=10)         # Shopify sends them back to us
    if landed.status_code != 302:
        raise RuntimeError(f"the Shopify callback answered {landed.status_code}: {landed.text[:300]}")
    user.claim(landed.headers["location"])
    return DEMO_SHOP


def _connect_woocommerce(user: _DemoUser, woo: WooSandbox, env: dict[str, str]) -> str:
    """The merchant pastes their store URL and REST keys into the frontend, which posts them with their token."""
    store = woo.store("demo")
    key, secret = store.add_key(permissions="read_write")
    url = woo.store_url(store)
    answer = httpx.post(f"http://127.0.0.1:{WEB_PORT}/woocommerce/connect", timeout=30,
                        headers={"Authorization": f"Bearer {user.access_token(env['SUPABASE_JWT_SECRET'])}"},
                        json={"organization_id": str(user.org), "store_url": url, "consumer_key": key,
                              "consumer_secret": secret})
    if answer.status_code != 201:
        raise RuntimeError(f"connecting the WooCommerce sandbox failed: {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["shop_key"])


def _install_shoprenter(user: _DemoUser, shoprenter: sr.ShopRenterSandbox) -> str:
    """Installed in the (sandbox) ShopRenter admin, opened there (the signed entry), claimed after sign-in."""
    installed = shoprenter.install(sr.DEMO_SHOP, sr.DEMO_CLIENT_ID)
    if installed.status_code != 302:
        raise RuntimeError(f"the ShopRenter install answered {installed.status_code}: {installed.text[:300]}")
    entry = httpx.get(f"http://127.0.0.1:{WEB_PORT}/shoprenter/entry", timeout=10,
                      params=shoprenter.install_query(sr.DEMO_SHOP, sr.DEMO_CLIENT_ID, app_url=False))
    if entry.status_code != 302:
        raise RuntimeError(f"the ShopRenter entry answered {entry.status_code}: {entry.text[:300]}")
    user.claim(entry.headers["location"])
    return sr.DEMO_SHOP


def _wait_synced(conn: psycopg.Connection[dict[str, Any]], platform: str, shop_key: str, since: Any) -> None:
    deadline = time.monotonic() + SYNC_TIMEOUT
    while True:
        state = conn.execute(
            "select s.id, s.status, (select count(*) from shopsync.sync_state t where t.store_id = s.id "
            "and t.last_full_sync_at > %s) as synced from shopsync.stores s "
            "where s.platform = %s and s.shop_key = %s", (since, platform, shop_key)).fetchone()
        if state is not None and state["status"] == "active" and state["synced"] == 3:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {platform} demo store did not finish its first sync in {SYNC_TIMEOUT:.0f}s: "
                               f"{state}")
        time.sleep(0.5)
    counts = conn.execute(
        "select (select count(*) from shopsync.products where store_id = %(s)s) as products, "
        "(select count(*) from shopsync.product_variants where store_id = %(s)s) as variants, "
        "(select count(*) from shopsync.customers where store_id = %(s)s) as customers, "
        "(select count(*) from shopsync.orders where store_id = %(s)s) as orders, "
        "(select count(*) from shopsync.order_line_items where store_id = %(s)s) as line_items",
        {"s": state["id"]}).fetchone()
    assert counts is not None
    _say(f"{platform} {shop_key} synced: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def _demo_stores(dsn: str, env: dict[str, str], woo: WooSandbox, shoprenter: sr.ShopRenterSandbox,
                 tiktok: TtShop) -> None:
    """The demo user connects all three sandbox stores, then waits for their first syncs. Done again on every
    start: the sandboxes keep their state in memory (a reconnect reuses the store and its data)."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        user = _DemoUser(conn)
        started = conn.execute("select now() as t").fetchone()["t"]  # type: ignore[index]
        connected = [("shopify", _install_shopify(user)), ("woocommerce", _connect_woocommerce(user, woo, env)),
                     ("shoprenter", _install_shoprenter(user, shoprenter))]
        _say(f"connected {', '.join(f'{p} {k}' for p, k in connected)} as {DEMO_USER}; the worker is syncing")
        for platform, shop_key in connected:
            _wait_synced(conn, platform, shop_key, started)
        tiktok_demo.connect_and_link(conn, user, tiktok, _say, _wait_synced)


def _demo_notifications(dsn: str, env: dict[str, str]) -> None:
    """The demo organization's notification channel points at the local SMTP sink (created through the channel
    endpoint with the demo user's token, as a frontend would; changed when it exists), with a rule: every
    warning or worse, grouped in 10-second windows."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        user = _DemoUser(conn)
        auth = {"Authorization": f"Bearer {user.access_token(env['SUPABASE_JWT_SECRET'])}"}
        config = {"host": "127.0.0.1", "port": SMTP_PORT, "security": "none",
                  "from": "shopsync dev <alerts@example.com>", "to": ["dev@example.com"]}
        existing = conn.execute("select id from shopsync.notification_channels where organization_id = %s "
                                "and name = %s", (user.org, DEMO_CHANNEL)).fetchone()
        base = f"http://127.0.0.1:{WEB_PORT}/notifications/channels"
        if existing is None:
            answer = httpx.post(base, headers=auth, timeout=10, json={
                "organization_id": str(user.org), "name": DEMO_CHANNEL, "kind": "smtp", "config": config})
        else:
            answer = httpx.patch(f"{base}/{existing['id']}", headers=auth, timeout=10, json={"config": config})
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"the demo notification channel was refused: {answer.status_code} {answer.text[:300]}")
        channel = answer.json()["id"]
        with user.session():
            if conn.execute("select 1 from shopsync.notification_rules where channel_id = %s", (channel,)).fetchone() \
                    is None:
                conn.execute("select shopsync.create_notification_rule(%s, p_min_severity => 'warning', "
                             "p_group_window_seconds => 10)", (channel,))
    _say(f"notifications: warnings and failures of the demo organization go to smtp://127.0.0.1:{SMTP_PORT}; "
         f"the mail lands in {MAIL_DIR}/ (one .eml per message, and inbox.mbox)")


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s: {last}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt      # SIGTERM (a process manager, `kill`) cleans up as Ctrl-C does


def run_dev(exit_when_ready: bool = False) -> int:
    pg = LocalPostgres(STATE_DIR / "pg", cron_database=DB_NAME)
    _say(f"PostgreSQL {server_version(pg.bindir)} in {pg.data_dir} (port {pg.port}; "
         f"pg_cron: {'yes' if pg.with_cron else 'not installed'})")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        pg.start()
        try:
            return _run_stack(pg, exit_when_ready)
        finally:
            _say("stopping PostgreSQL")
            pg.stop()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_stack(pg: LocalPostgres, exit_when_ready: bool) -> int:
    """Migrate, start the processes and sandboxes, connect the demo stores; stop the processes on the way out."""
    pg.create_database(DB_NAME)
    _say("migrating")
    migrate(pg.dsn(DB_NAME), log=lambda m: _say("  " + m.strip()))
    env = _dev_env(pg)
    logs = STATE_DIR / "logs"
    logs.mkdir(exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    sink = MailSink(port=SMTP_PORT, directory=MAIL_DIR)
    # WooCommerce and ShopRenter sandboxes run in this process (the demo connects drive them directly)
    woo = WooSandbox()
    woo.add_store("demo", WooDatasetSpec(products=30, customers=15, orders=25))
    shoprenter = sr.ShopRenterSandbox(rate_limit=3.0)
    shoprenter.add_app(sr.DEMO_CLIENT_ID, sr.DEMO_CLIENT_SECRET,
                       redirect_uri=f"http://127.0.0.1:{WEB_PORT}/shoprenter/install",
                       uninstall_uri=f"http://127.0.0.1:{WEB_PORT}/shoprenter/uninstall")
    shoprenter.add_shop(sr.DEMO_SHOP, sr.SrDatasetSpec(products=30, customers=15, orders=25))
    tiktok, tiktok_shop = tiktok_demo.tiktok_sandbox(WEB_PORT)
    try:
        commands = {
            "shopify-sandbox": [sys.executable, "-m", "sandbox.shopify", "--port", str(SANDBOX_PORT),
                                "--shop", DEMO_SHOP,
                                "--compliance-uri", f"http://127.0.0.1:{WEB_PORT}/shopify/webhooks"],
            "web": [sys.executable, "-m", "worker", "web"],
            "worker": [sys.executable, "-m", "worker", "worker"],
        }
        for name, command in commands.items():
            out = (logs / f"{name}.log").open("ab")
            procs[name] = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            _say(f"started {name} (pid {procs[name].pid}), log: {logs / (name + '.log')}")
        _wait_ready(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/health")
        _say(f"Shopify sandbox: http://127.0.0.1:{SANDBOX_PORT} (shop {DEMO_SHOP})")
        _wait_ready(f"http://127.0.0.1:{WEB_PORT}/readyz")
        _say(f"web ready: http://127.0.0.1:{WEB_PORT}/healthz  /readyz  /metrics")
        with serve_woocommerce_sandbox(woo, port=WOO_PORT) as woo_url, \
                sr.serve_shoprenter_sandbox(shoprenter, port=SHOPRENTER_PORT) as sr_url, \
                serve_tiktok_sandbox(tiktok, port=tiktok_demo.TIKTOK_PORT) as tt_url, sink:
            _say(f"SMTP sink: 127.0.0.1:{sink.port} (mail kept in {MAIL_DIR})")
            _say(f"WooCommerce sandbox: {woo_url} (store {woo.store_url('demo')})")
            _say(f"ShopRenter sandbox: {sr_url} (shop {sr.DEMO_SHOP})")
            _say(f"TikTok Shop sandbox: {tt_url} (shop {tiktok_shop.id})")
            _demo_stores(pg.dsn(DB_NAME), env, woo, shoprenter, tiktok_shop)
            _demo_notifications(pg.dsn(DB_NAME), env)
            _say(f"database:  psql {pg.dsn(DB_NAME)}")
            _say(f"status:    DATABASE_URL={pg.dsn(DB_NAME)} shopsync status")
            subprocess.run([sys.executable, "-m", "worker", "status"], env=env, check=False)
            if exit_when_ready:
                return 0
            _say("running; Ctrl-C to stop")
            while all(p.poll() is None for p in procs.values()):
                time.sleep(0.5)
            dead = [n for n, p in procs.items() if p.poll() is not None]
            _say(f"{', '.join(dead)} exited; see {logs}")
            return 1
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
