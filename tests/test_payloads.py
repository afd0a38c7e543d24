"""JSON from outside, made safe to store in one place (worker.payloads): NUL stripped and counted, depth capped,
shapes checked without echoing values."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from pydantic import TypeAdapter

from worker import payloads
from worker.connectors.shopify.mapping import bulk_raw
from worker.payloads import MAX_DEPTH, JsonRejected, Record, load_json, load_json_object, shape_problem


def test_nul_is_stripped_from_keys_and_values_and_counted() -> None:
    before = payloads.stripped_total()
    with payloads.counting() as job:
        value = load_json(b'{"ti\\u0000tle": "Hat\\u0000 \\u0000Blue", "tags": ["a\\u0000"], "n": 1}')
    assert value == {"title": "Hat Blue", "tags": ["a"], "n": 1}
    assert job == [4] and payloads.stripped_total() == before + 4
    # an escaped backslash before "u0000" is text, not a NUL: kept as sent
    assert load_json(b'{"a": "\\\\u0000"}') == {"a": "\\u0000"}


def test_each_job_counts_what_it_and_its_tasks_parsed() -> None:
    async def job(nuls: int) -> list[int]:
        with payloads.counting() as count:
            async def parse() -> None:
                await asyncio.sleep(0)
                load_json(b'["' + b"\\u0000" * nuls + b'"]')
            await asyncio.gather(asyncio.create_task(parse()), asyncio.to_thread(load_json, b'"\\u0000"'))
            return count

    async def both() -> list[list[int]]:
        return list(await asyncio.gather(job(1), job(5)))        # concurrent jobs do not mix their counts

    assert asyncio.run(both()) == [[2], [6]]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 1000])
def test_deep_nesting_is_refused(depth: int) -> None:
    with pytest.raises(JsonRejected, match=f"deeper than {MAX_DEPTH}"):
        load_json(b"[" * depth + b"]" * depth)


def test_wide_but_shallow_bodies_pass() -> None:
    body = orjson.dumps({"items": [{"id": i, "tags": [str(i)]} for i in range(500)]})
    assert len(load_json(body)["items"]) == 500
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert load_json(nested) is not None


@pytest.mark.parametrize(("raw", "message"), [
    (b"{", "not valid JSON"), (b"\xff", "not valid JSON"), (b"[1]", "must be a JSON object"),
    (b"1e400", "not valid JSON")])
def test_what_is_not_a_json_object_is_refused_clearly(raw: bytes, message: str) -> None:
    with pytest.raises(JsonRejected, match=message):
        load_json_object(raw)


def test_shape_problems_name_fields_never_values() -> None:
    adapter = TypeAdapter(Record)
    assert shape_problem(adapter, {"id": 5, "extra": {"anything": True}}, "products/update") is None
    problem = shape_problem(adapter, {"id": {"secret@example.com": 1}}, "products/update")
    assert problem is not None and problem.startswith("products/update does not have the expected shape (id")
    assert "secret@example.com" not in problem
    assert "id: Field required" in (shape_problem(adapter, {"email": "a@b.c"}, "x") or "")


def test_a_bulk_line_with_nul_is_stored_from_the_cleaned_object() -> None:
    line = b'{"id":"gid://shopify/Product/1","title":"Hat\\u0000"}'
    node = load_json(line)
    assert node["title"] == "Hat" and bulk_raw(line, node) is None
    clean = b'{"id":"gid://shopify/Product/1","title":"Hat"}'
    assert bulk_raw(clean, load_json(clean)) is not None          # the usual line keeps its own bytes
