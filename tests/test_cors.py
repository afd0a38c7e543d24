"""CORS: the browser routes (POST /woocommerce/connect) answer preflights and carry Access-Control-* headers
for the configured origins only; webhook, callback and health routes never do."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from worker.config import Settings, load_settings
from worker.db.direct import DirectDatabase
from worker.errors import ConfigError
from worker.web.app import create_app

APP = "https://app.example.com"
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type"}


def app_with(db: DirectDatabase, origins: list[str]) -> Any:
    settings = Settings(_env_file=None, cors_origins=origins, supabase_jwt_secret="x" * 40)  # type: ignore[call-arg]
    return create_app(settings, db)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_the_connect_route_answers_preflights_for_configured_origins(db: DirectDatabase) -> None:
    async with client(app_with(db, [APP, "http://localhost:3000"])) as c:
        ok = await c.options("/woocommerce/connect", headers=PREFLIGHT)
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == APP
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert {"authorization", "content-type"} <= set(ok.headers["access-control-allow-headers"].lower().split(", "))
        assert ok.headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in ok.headers        # tokens go in a header, not cookies
        # the real request's answer is readable by the page, errors included (here: no token)
        refused = await c.post("/woocommerce/connect", json={}, headers={"Origin": APP})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == APP
        # another site gets no permission
        other = await c.options("/woocommerce/connect", headers={**PREFLIGHT, "Origin": "https://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        sneaky = await c.post("/woocommerce/connect", json={}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in sneaky.headers


@pytest.mark.parametrize("path", ["/shopify/webhooks", "/shopify/callback", "/healthz", "/metrics",
                                  "/woocommerce/webhooks/00000000-0000-0000-0000-000000000000"])
async def test_platform_and_probe_routes_never_answer_cors(db: DirectDatabase, path: str) -> None:
    async with client(app_with(db, [APP])) as c:
        preflight = await c.options(path, headers=PREFLIGHT)
        assert preflight.status_code == 405 and "access-control-allow-origin" not in preflight.headers
        answer = await c.request("POST" if "webhooks" in path else "GET", path, headers={"Origin": APP})
        assert "access-control-allow-origin" not in answer.headers


async def test_no_origin_is_allowed_by_default(db: DirectDatabase) -> None:
    async with client(app_with(db, [])) as c:
        preflight = await c.options("/woocommerce/connect", headers=PREFLIGHT)
        assert preflight.status_code == 405 and "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize(("value", "problem"), [
    ("*", "list the frontend's origins"), ("https://app.example.com/path", "is not an origin"),
    ("app.example.com", "is not an origin")])
def test_origins_are_checked(monkeypatch: pytest.MonkeyPatch, value: str, problem: str) -> None:
    monkeypatch.setenv("SHOPSYNC_CORS_ORIGINS", f"http://localhost:3000,{value}")
    with pytest.raises(ConfigError, match=f"SHOPSYNC_CORS_ORIGINS: .*{problem}"):
        load_settings(_env_file=None)
    monkeypatch.setenv("SHOPSYNC_CORS_ORIGINS", "http://localhost:3000, HTTPS://App.Example.com:8443")
    assert load_settings(_env_file=None).cors_origins == ["http://localhost:3000", "https://app.example.com:8443"]
