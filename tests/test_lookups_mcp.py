"""The look-ups as MCP tools, driven by the ``mcp`` package's own client over both transports: streamable HTTP
(the web process on a real port, both protocol eras) and stdio (``shopsync mcp`` as a subprocess). Same tools,
same answers and the same refusals as the HTTP endpoints; keys that cannot look up are refused before any tool
runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import httpx2
import psycopg
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from sandbox.serving import serve_app
from tests.conftest import as_role, set_policy
from tests.lookup_world import (
    EMAIL,
    LookupWeb,
    create_key,
    tenant,
)
from tests.platform_world import free_port
from worker.lookups.openapi import openapi_document
from worker.lookups.operations import OPERATIONS
from worker.lookups.settings import LookupSettings
from worker.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
Conn = psycopg.Connection[dict[str, Any]]


def _without_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_without_titles(v) for v in schema]
    return schema


async def _exercise(client: Client, store: Any, other_store: Any) -> None:
    """What both transports must do alike."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(OPERATIONS)
    components = openapi_document()["components"]["schemas"]
    for name, tool in tools.items():
        body = components[OPERATIONS[name].params.__name__]
        assert _without_titles(tool.input_schema.get("properties", {})) == _without_titles(body.get("properties", {}))
        assert sorted(tool.input_schema.get("required", [])) == sorted(body.get("required", []))
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert tool.output_schema is not None

    found = await client.call_tool("find_customer", {"store_id": str(store), "phone": "+36 30 123 4567"})
    assert not found.is_error, found.content
    assert found.structured_content is not None
    assert [c["id"] for c in found.structured_content["customers"]] == ["101"]
    assert found.structured_content["source"] == "synced"
    orders = await client.call_tool("find_orders", {"store_id": str(store), "customer_id": "101", "limit": 1})
    assert orders.structured_content is not None
    assert [o["name"] for o in orders.structured_content["orders"]] == ["#1002"]
    stores = await client.call_tool("list_stores", {})
    assert stores.structured_content is not None
    assert [s["store_id"] for s in stores.structured_content["stores"]] == [str(store)]

    theirs = await client.call_tool("find_customer", {"store_id": str(other_store), "email": EMAIL})
    assert theirs.is_error and "404 not_found: unknown store" in theirs.content[0].text  # type: ignore[union-attr]
    bad = await client.call_tool("find_customer", {"store_id": str(store), "email": "nope"})
    assert bad.is_error and "422" in bad.content[0].text and "nope" not in bad.content[0].text  # type: ignore[union-attr]
    schema = await client.call_tool("find_customer", {"store_id": str(store), "limit": 0})
    assert schema.is_error                                     # refused by the tool's JSON schema
    refused = await client.call_tool("find_products", {"store_id": str(store), "sku": "TEE-BLUE-M"})
    assert refused.is_error
    text = refused.content[0].text  # type: ignore[union-attr]
    assert text.startswith("Error executing tool find_products: 403") and "not_allowed" in text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_over_streamable_http(web: LookupWeb, conn: Conn, mode: str) -> None:
    t = tenant(conn, "mcp.myshopify.com")
    other = tenant(conn, "mcp-other.myshopify.com")
    set_policy(conn, t.store, "products", "not_allowed")
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {t.key}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{web.url}/v1/mcp/", http_client=http), mode=mode) as client:
        await _exercise(client, t.store, other.store)
    audited = conn.execute("select interface, lookup, outcome from shopsync.lookup_audit where organization_id = %s "
                           "order by id", (t.org,)).fetchall()
    assert {r["interface"] for r in audited} == {"mcp"}
    assert ("customers_by_phone", "answered") in {(r["lookup"], r["outcome"]) for r in audited}


async def test_the_mcp_endpoint_refuses_dead_keys_and_foreign_hosts(web: LookupWeb, conn: Conn) -> None:
    t = tenant(conn, "mcp-keys.myshopify.com")
    revoked = create_key(conn, t.owner, t.org, name="old")
    with as_role(conn, "authenticated", t.owner):
        conn.execute("select shopsync.revoke_api_key(%s)", (revoked["key_id"],))
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as client:
        for token, words in ((None, "missing Authorization"), ("ssk_short", "malformed API key"),
                             ("ssk_" + "1" * 12 + "_" + "2" * 52, "unknown API key"), (revoked["key"], "revoked")):
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.post("/v1/mcp/", json=ping, headers={**headers, **auth})
            assert response.status_code == 401, (token, response.text)
            assert words in response.json()["detail"]
        good = {**headers, "Authorization": f"Bearer {t.key}"}
        listed = await client.post("/v1/mcp/", json=ping, headers=good)
        assert listed.status_code == 200 and "find_customer" in listed.text
        rebound = await client.post("/v1/mcp/", json=ping, headers={**good, "Host": "evil.example"})
        assert rebound.status_code == 421
        foreign = await client.post("/v1/mcp/", json=ping, headers={**good, "Origin": "https://evil.example"})
        assert foreign.status_code == 403


async def test_more_hosts_come_from_a_comma_separated_variable(web_core: Any, conn: Conn,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSYNC_LOOKUP_MCP_ALLOWED_HOSTS", " agents.example.com, agents.example.net:* ")
    settings = LookupSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.mcp_allowed_hosts == ["agents.example.com", "agents.example.net:*"]
    monkeypatch.setattr("worker.lookups.web.lookup_settings", lambda: settings)
    t = tenant(conn, "mcp-hosts.myshopify.com")
    port = free_port()
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "Authorization": f"Bearer {t.key}"}
    with serve_app(create_app(web_core.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})), port=port,
                   name="shopsync-web"):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for host, status in (("agents.example.com", 200), ("agents.example.net:8443", 200),
                                 ("agents.example.com:8443", 421), ("evil.example", 421)):
                response = await client.post("/v1/mcp/", json=ping, headers={**headers, "Host": host})
                assert response.status_code == status, (host, response.text)


def _stdio_env(dsn: str, key: str, core_keys: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
    return {**keep, "DATABASE_URL": dsn, "SHOPSYNC_LOOKUP_KEY": key, "SHOPSYNC_SEALING_KEYS": core_keys,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'sandboxes'}", "SHOPSYNC_LOG_FORMAT": "json"}


async def test_tools_over_stdio(dsn: str, conn: Conn, web_core: Any) -> None:
    t = tenant(conn, "stdio.myshopify.com")
    other = tenant(conn, "stdio-other.myshopify.com")
    set_policy(conn, t.store, "products", "not_allowed")
    keys = web_core.sealing_keys.get_secret_value()
    params = StdioServerParameters(command=sys.executable, args=["-m", "worker", "mcp"], cwd=str(ROOT),
                                   env=_stdio_env(dsn, t.key, keys))
    async with Client(params) as client:
        await _exercise(client, t.store, other.store)
    assert conn.execute("select count(*) as n from shopsync.lookup_audit where organization_id = %s and "
                        "interface = 'mcp'", (t.org,)).fetchone()["n"] >= 5


def test_shopsync_mcp_refuses_to_start_with_a_dead_key(dsn: str, conn: Conn, web_core: Any) -> None:
    t = tenant(conn, "stdio-dead.myshopify.com")
    key = create_key(conn, t.owner, t.org, name="gone")
    with as_role(conn, "authenticated", t.owner):
        conn.execute("select shopsync.revoke_api_key(%s)", (key["key_id"],))
    keys = web_core.sealing_keys.get_secret_value()
    for value, words in ((key["key"], "is revoked"), ("", "set SHOPSYNC_LOOKUP_KEY"), ("nope", "malformed API key")):
        done = subprocess.run([sys.executable, "-m", "worker", "mcp"], cwd=ROOT, env=_stdio_env(dsn, value, keys),
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 2, done.stderr
        assert words in done.stderr and done.stdout == ""
        assert key["key"] not in done.stderr
