"""A link's rules, as pure functions: price multiplier, offset and cents rounding; stock percentage, zero-below
threshold and cap; the values they refuse (never sent); and when a pending product is pushed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from worker.links.push import MAX_DELAY, SETTLE, due
from worker.links.rules import InventoryRule, PriceRule, Refused
from worker.rpc.product_links import PendingPush


@pytest.mark.parametrize(("link", "source", "expected"), [
    ({}, "12.30", "12.30"),
    ({"price_multiplier": "1.5"}, "10", "15.00"),
    ({"price_offset": "-0.01"}, "10", "9.99"),
    ({"price_rounding": ".99"}, "12.30", "12.99"),
    ({"price_rounding": ".99"}, "12.995", "13.99"),         # never below the computed price
    ({"price_rounding": ".99"}, "12.99", "12.99"),
    ({"price_rounding": ".00", "price_multiplier": "1.1"}, "10", "11.00"),
    ({"price_multiplier": "1.2", "price_offset": "0.5", "price_rounding": ".95"}, "20", "24.95"),
    ({}, "10.005", "10.01"),                                 # to the cent, half up
])
def test_price_rules(link: dict[str, Any], source: str, expected: str) -> None:
    assert PriceRule.of(link).apply(source) == Decimal(expected)


@pytest.mark.parametrize(("link", "source"), [({}, None), ({}, "abc"), ({}, "NaN"), ({"price_offset": "-20"}, "10"),
                                              ({}, "0"), ({"price_offset": "-10"}, "10")])
def test_prices_that_are_not_positive_numbers_are_refused(link: dict[str, Any], source: Any) -> None:
    with pytest.raises(Refused) as refused:
        PriceRule.of(link).apply(source)
    assert refused.value.reason == "price_invalid"


@pytest.mark.parametrize(("link", "source", "expected"), [
    ({}, 17, 17),
    ({"inventory_percentage": 50}, 17, 8),                   # rounded down: never promise more than there is
    ({"inventory_zero_below": 5}, 4, 0),
    ({"inventory_zero_below": 5}, 5, 5),
    ({"inventory_cap": 10}, 50, 10),
    ({"inventory_percentage": 80, "inventory_zero_below": 3, "inventory_cap": 20}, 3, 0),
    ({}, -4, 0),                                             # oversold at the source
])
def test_inventory_rules(link: dict[str, Any], source: int, expected: int) -> None:
    assert InventoryRule.of(link).apply(source) == expected


def test_a_source_without_stock_is_refused() -> None:
    with pytest.raises(Refused, match="no stock figure"):
        InventoryRule.of({}).apply(None)


# --- when a pending product is pushed (worker.links.push.due) ------------------------------------------------

@pytest.mark.parametrize(("quiet", "storming", "waited", "expected"), [
    (0.0, False, 0.0, False),                       # it just changed: wait for its own changes to settle
    (SETTLE, False, SETTLE, True),                  # quiet long enough, its sources calm: push
    (30.0, True, 30.0, False),                      # quiet, but a source store is in a storm: its newest value
                                                    # may still be on its way
    (0.0, True, MAX_DELAY, True),                   # a storm that never ends: pushed anyway after MAX_DELAY
    (0.0, False, MAX_DELAY, True),                  # changed again and again: pushed anyway after MAX_DELAY
])
def test_a_pending_product_is_due_once_settled_and_not_in_a_storm(quiet: float, storming: bool, waited: float,
                                                                  expected: bool) -> None:
    assert due(PendingPush("p1", 3, quiet, storming), waited) is expected
