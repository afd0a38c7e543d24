"""ShopifyGraphQL against the real Shopify sandbox over HTTP: pacing, paging, retries and error mapping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.shopify import DatasetSpec, ShopifySandbox, serve_shopify_sandbox
from worker.connectors.shopify.auth import InvalidShopDomain
from worker.connectors.shopify.graphql import ShopifyGraphQL
from worker.errors import NeedsReauthError, PermanentError, RetryableError

SHOP = "demo.myshopify.com"
CLIENT_ID = "graphql-test-client"
VERSION = "2026-10"
PRODUCTS_PAGE = """
query Products($first: Int!, $after: String) {
  products(first: $first, after: $after) { nodes { id title } pageInfo { hasNextPage endCursor } }
}"""


@dataclass
class Env:
    sandbox: ShopifySandbox
    token: str

    def client(self, **options: Any) -> ShopifyGraphQL:
        token = self.token

        async def provider() -> str:
            return token

        options.setdefault("backoff_base", 0.05)
        return ShopifyGraphQL(SHOP, provider, api_version=VERSION, base_url=self.sandbox.shop_url(SHOP), **options)


@contextmanager
def running(products: int = 30, **options: Any) -> Iterator[Env]:
    sandbox = ShopifySandbox(webhook_retry_delays=(0.01,), **options)
    sandbox.add_app(CLIENT_ID, "shpss_graphql_test_secret")
    sandbox.add_shop(SHOP, DatasetSpec(products=products, customers=0, orders=0))
    with serve_shopify_sandbox(sandbox):
        yield Env(sandbox, sandbox.issue_token(SHOP, CLIENT_ID)["access_token"])


@pytest.fixture
def env() -> Iterator[Env]:
    with running() as e:
        yield e


async def test_query_returns_data_and_reads_the_bucket(env: Env) -> None:
    async with env.client() as gql:
        data = await gql.query("{ shop { name } productsCount { count } }")
        assert data["productsCount"]["count"] == 30
        assert data["shop"]["name"]
        real = env.sandbox.bucket(SHOP, CLIENT_ID)
        assert gql.bucket.observed
        assert gql.bucket.maximum == real.capacity and gql.bucket.restore_rate == real.restore_rate
        assert gql.bucket.available < real.capacity          # the query's cost was charged
        assert gql.estimated_cost("{ shop { name } productsCount { count } }") >= 1
        assert gql.stats.requests == 1 and gql.stats.retries == 0


async def test_paginate_yields_every_product_once() -> None:
    with running(products=600, throttle=False) as env:
        async with env.client() as gql:
            ids = [node["id"] async for node in gql.paginate(PRODUCTS_PAGE, "products", page_size=100)]
        assert len(ids) == 600 and len(set(ids)) == 600
        assert {f"gid://shopify/Product/{i}" for i in env.sandbox.shop(SHOP).product_ids()} == set(ids)
        assert gql.stats.requests == 6


async def test_pacing_avoids_throttled_with_a_small_bucket() -> None:
    # 30 pages of 20 cost ~660 points against a 200-point bucket refilling at 100/s: must wait ~4.6 s
    with running(products=600, bucket_size=200, restore_rate=100) as env:
        async with env.client() as gql:
            ids = [node["id"] async for node in gql.paginate(PRODUCTS_PAGE, "products", page_size=20)]
            assert len(set(ids)) == 600 and gql.stats.requests == 30
            assert env.sandbox.counters["throttled"] == 0 and gql.stats.throttled == 0
            assert gql.stats.slept_seconds > 2.0

            # concurrent callers of one client share the pacing decision
            await asyncio.gather(*(gql.query(PRODUCTS_PAGE, {"first": 20}) for _ in range(12)))
            assert env.sandbox.counters["throttled"] == 0


async def test_throttled_response_is_waited_out() -> None:
    with running(bucket_size=200, restore_rate=200) as env:
        async with env.client() as gql:
            await gql.query(PRODUCTS_PAGE, {"first": 20})
            env.sandbox.bucket(SHOP, CLIENT_ID).drain()     # someone else spent the points
            data = await gql.query(PRODUCTS_PAGE, {"first": 20})
        assert len(data["products"]["nodes"]) == 20
        assert env.sandbox.counters["throttled"] == 1 and gql.stats.throttled == 1 and gql.stats.retries == 1


async def test_503_is_retried(env: Env) -> None:
    env.sandbox.faults.fail_next(2, 503, endpoint="graphql")
    async with env.client() as gql:
        data = await gql.query("{ shop { name } }")
    assert data["shop"]["name"] and gql.stats.requests == 3 and gql.stats.retries == 2


async def test_timeout_is_retried(env: Env) -> None:
    env.sandbox.faults.hang_next(1, seconds=1.0, endpoint="graphql")
    async with env.client(timeout=0.3) as gql:
        data = await gql.query("{ shop { name } }")
    assert data["shop"]["name"] and gql.stats.requests == 2


async def test_5xx_gives_up_with_retryable_error(env: Env) -> None:
    env.sandbox.faults.fail_next(10, 502, endpoint="graphql")
    async with env.client(max_retries=2) as gql:
        with pytest.raises(RetryableError, match="HTTP 502"):
            await gql.query("{ shop { name } }")
    assert gql.stats.requests == 3


async def test_429_honours_retry_after(env: Env) -> None:
    env.sandbox.faults.rate_limit_next(1, retry_after=0.4)
    async with env.client() as gql:
        data = await gql.query("{ shop { name } }")
    assert data["shop"]["name"] and gql.stats.requests == 2 and gql.stats.throttled == 1
    assert gql.stats.slept_seconds >= 0.35   # Retry-After counts from the response


async def test_401_needs_reauth_without_retry(env: Env) -> None:
    env.sandbox.faults.unauthorized_next(1)
    async with env.client() as gql:
        with pytest.raises(NeedsReauthError):
            await gql.query("{ shop { name } }")
    assert gql.stats.requests == 1 and env.sandbox.counters["http_graphql"] == 1


async def test_graphql_errors_are_permanent(env: Env) -> None:
    async with env.client() as gql:
        with pytest.raises(PermanentError, match="GraphQL error") as syntax:
            await gql.query("{ shop { name ")
        with pytest.raises(PermanentError, match="doesn't exist"):
            await gql.query("{ noSuchField { id } }")
        with pytest.raises(PermanentError, match="MAX_COST|max cost"):
            await gql.query("{ products(first: 250) { nodes { id variants(first: 10) { nodes { id } } } } }")
    assert not isinstance(syntax.value, RetryableError) and gql.stats.requests == 3 and gql.stats.retries == 0


@pytest.mark.parametrize("shop", ["evil.example.com", "demo.myshopify.com.evil.com", "127.0.0.1",
                                  "demo.myshopify.com/../admin", "", "http://demo.myshopify.com"])
async def test_hostile_shop_domain_is_rejected_before_any_request(env: Env, shop: str) -> None:
    async def provider() -> str:
        raise AssertionError("the token must not be fetched")

    with pytest.raises(InvalidShopDomain):
        ShopifyGraphQL(shop, provider, api_version=VERSION, base_url=env.sandbox.shop_url(SHOP))
    assert env.sandbox.counters["http_graphql"] == 0


async def test_token_never_appears_in_errors_or_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []
    async with env.client(max_retries=1) as gql:
        env.sandbox.faults.fail_next(4, 503, endpoint="graphql")   # two queries, two attempts each
        env.sandbox.faults.unauthorized_next(1)
        for document in ("{ shop { name } }", "{ shop { name } }", "{ shop { name } }", "{ shop { name }", "{ nope }"):
            with pytest.raises((PermanentError, RetryableError)) as info:
                await gql.query(document)
            raised.append(info.value)
    async with ShopifyGraphQL(SHOP, lambda: _const(env.token), api_version="not-a-version",
                              base_url=env.sandbox.shop_url(SHOP)) as old:
        with pytest.raises(PermanentError) as info:
            await old.query("{ shop { name } }")
        raised.append(info.value)
    assert [type(e).__name__ for e in raised] == ["RetryableError", "RetryableError", "NeedsReauthError",
                                                  "PermanentError", "PermanentError", "PermanentError"]
    for exc in raised:
        assert env.token not in str(exc) and env.token not in repr(exc.args)
    assert env.token not in caplog.text


async def _const(value: str) -> str:
    return value
