"""The slice of Shopify's search syntax (``query:`` argument) that a sync engine uses.

Supported terms: ``updated_at``, ``created_at``, ``processed_at`` (orders) with ``:``, ``:>``, ``:>=``,
``:<``, ``:<=``; ``id:>N`` style comparisons on the numeric ID; ``status:`` on products; ``email:`` and
``phone:`` on customers; on orders ``tag:``, ``tag_not:``, ``source_identifier:``, ``source_name:``, ``name:``
(with or without ``#``), ``email:``, ``customer_id:``, ``financial_status:``, ``fulfillment_status:``
(``SEARCH_FIELDS``; exact, case-insensitive; values may be quoted, a backslash escapes ``:`` and the like, as
Shopify's search syntax says). Free-text words on products must each appear in the title (Shopify searches
more fields; ``TEXT_SEARCH``). Terms are ANDed (``AND`` is accepted, ``OR``/``NOT``/other free text are
ignored with a warning in ``extensions.search`` — honest about what the sandbox does not implement).

Timestamp semantics, as documented by Shopify (see the module's tests and the lead's notes):

* **Quote the timestamp.** ``updated_at:>'2026-01-01T10:00:00Z'`` compares the full time. An unquoted
  ``updated_at:>2026-01-01T10:00:00Z`` *ignores the time part* and compares against the date only, so it
  returns everything updated that day (community.shopify.com, Shopify staff answer: "enclose the
  date-time value inside single quotes").
* **``>`` on API ≥ 2026-10 excludes the full second** (changelog "Exclusive > timestamp filters exclude the
  full second"): ``>'…T12:00:02Z'`` no longer matches a record stored at ``12:00:02.500`` — which the API
  shows as ``12:00:02Z``. Before 2026-10 it does. ``>=``, ``<``, ``<=``, date-only values and values with
  fractional seconds behave the same on every version; ``<=T`` covers the whole second ``T``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.shopify.clock import US, day_start_us, parse_timestamp, version_at_least

__all__ = ["SEARCH_FIELDS", "SearchFilter", "SearchValue", "Term", "parse_search", "search_filter", "timestamp_bounds"]

TIMESTAMP_FIELDS = frozenset({"updated_at", "created_at", "processed_at"})
EXCLUSIVE_SECOND_VERSION = "2026-10"
# per entity kind: (fields compared for equality, fields whose value is a list a term must be in)
SEARCH_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "product": (frozenset({"status"}), frozenset()),
    "customer": (frozenset({"email", "phone"}), frozenset()),
    "order": (frozenset({"source_identifier", "source_name", "name", "email", "financial_status", "customer_id"}),
              frozenset({"tag", "fulfillment_status"})),
}
TEXT_SEARCH = frozenset({"product"})     # kinds whose free-text words are matched (against field "text")
SearchValue = int | str | list[str] | None
_ESCAPED = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Term:
    field: str
    op: str  # ":", ">", ">=", "<", "<="
    value: str
    quoted: bool


@dataclass
class SearchFilter:
    """Bounds per timestamp field (lo inclusive, hi exclusive, microseconds), id bounds, exact matches."""

    time_bounds: dict[str, tuple[int | None, int | None]]
    id_bounds: tuple[int | None, int | None]
    equals: dict[str, str]
    warnings: list[str]
    contains: dict[str, list[str]] = field(default_factory=dict)  # tag:a tag:b -> both tags present
    excludes: dict[str, list[str]] = field(default_factory=dict)  # tag_not:a -> tag a absent
    words: list[str] = field(default_factory=list)  # free text (TEXT_SEARCH kinds): each in field "text"

    def matches(self, get: Callable[[str], SearchValue], legacy_id: int) -> bool:
        lo, hi = self.id_bounds
        if (lo is not None and legacy_id < lo) or (hi is not None and legacy_id >= hi):
            return False
        for fld, (tlo, thi) in self.time_bounds.items():
            value = get(fld)
            if not isinstance(value, int):
                return False
            if (tlo is not None and value < tlo) or (thi is not None and value >= thi):
                return False
        for fld, expected in self.equals.items():
            value = get(fld)
            if value is None or str(value).lower() != expected.lower():
                return False
        for fld, wanted in self.contains.items():
            present = _lowered(get(fld))
            if any(w.lower() not in present for w in wanted):
                return False
        for fld, unwanted in self.excludes.items():
            present = _lowered(get(fld))
            if any(w.lower() in present for w in unwanted):
                return False
        if self.words:
            text = str(get("text") or "").lower()
            if any(w.lower() not in text for w in self.words):
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.time_bounds and self.id_bounds == (None, None) and not self.equals and \
            not self.contains and not self.excludes and not self.words


def _lowered(value: SearchValue) -> set[str]:
    if isinstance(value, list):
        return {v.lower() for v in value}
    return set() if value is None else {str(value).lower()}


def _split(query: str) -> list[tuple[str, bool]]:
    """Split on whitespace outside quotes, remembering which terms carried a quoted value."""
    out: list[tuple[str, bool]] = []
    buf: list[str] = []
    quote: str | None = None
    quoted = False
    for ch in query:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            buf.append(ch)
            quote, quoted = ch, True
        elif ch.isspace():
            if buf:
                out.append(("".join(buf), quoted))
            buf, quoted = [], False
        else:
            buf.append(ch)
    if quote:
        raise ValueError("unterminated quote")
    if buf:
        out.append(("".join(buf), quoted))
    return out


def parse_terms(query: str, *, free_text: list[str] | None = None) -> tuple[list[Term], list[str]]:
    """The field terms; free-text words go to ``free_text`` when given (else they are warned about)."""
    terms: list[Term] = []
    warnings: list[str] = []
    try:
        raw_terms = _split(query)
    except ValueError:
        return [], [f"Invalid search query: {query!r}"]
    for raw, quoted in raw_terms:
        if raw in ("AND",):
            continue
        if free_text is not None and ":" not in raw and raw not in ("OR", "NOT") and not raw.startswith("-"):
            free_text.append(raw.strip("'\""))
            continue
        if raw in ("OR", "NOT") or raw.startswith("-") or ":" not in raw:
            warnings.append(f"sandbox ignores search term {raw!r}")
            continue
        fld, _, rest = raw.partition(":")
        op = ":"
        for candidate in (">=", "<=", ">", "<"):
            if rest.startswith(candidate):
                op, rest = candidate, rest[len(candidate):]
                break
        if len(rest) >= 2 and rest[0] == rest[-1] and rest[0] in "'\"":
            rest = rest[1:-1]
        terms.append(Term(fld.lower(), op, _ESCAPED.sub(r"\1", rest), quoted))
    return terms, warnings


def timestamp_bounds(term: Term, version: str) -> tuple[int | None, int | None] | None:
    """The [lo, hi) microsecond interval a timestamp term selects, or None if the value is invalid."""
    parsed = parse_timestamp(term.value)
    if parsed is None:
        return None
    us, has_time, has_fraction = parsed
    if has_time and not term.quoted:
        us, has_time, has_fraction = day_start_us(us), False, False  # Shopify drops the unquoted time part
    if not has_time:
        day = us
        return {
            ":": (day, day + 86_400 * US),
            ">": (day, None),  # "returns all entries updated at that date", not only later ones
            ">=": (day, None),
            "<": (None, day),
            "<=": (None, day + 86_400 * US),
        }[term.op]
    if has_fraction:
        return {":": (us, us + 1), ">": (us + 1, None), ">=": (us, None), "<": (None, us),
                "<=": (None, us + 1)}[term.op]
    second_end = us + US
    if term.op == ">":
        return (second_end if version_at_least(version, EXCLUSIVE_SECOND_VERSION) else us + 1, None)
    return {":": (us, second_end), ">=": (us, None), "<": (None, us), "<=": (None, second_end)}[term.op]


def _intersect(a: tuple[int | None, int | None], b: tuple[int | None, int | None]) -> tuple[int | None, int | None]:
    lo = b[0] if a[0] is None else a[0] if b[0] is None else max(a[0], b[0])
    hi = b[1] if a[1] is None else a[1] if b[1] is None else min(a[1], b[1])
    return lo, hi


def search_filter(kind: str, query: object, version: str) -> SearchFilter:
    """The filter a ``query:`` argument gives on entity ``kind`` ("product", "customer", "order")."""
    equality, lists = SEARCH_FIELDS.get(kind, (frozenset(), frozenset()))
    return parse_search(query if isinstance(query, str) else None, version, equality_fields=equality,
                        list_fields=lists, free_text=kind in TEXT_SEARCH)


def parse_search(query: str | None, version: str, *, equality_fields: frozenset[str] = frozenset(),
                 list_fields: frozenset[str] = frozenset(), free_text: bool = False) -> SearchFilter:
    flt = SearchFilter({}, (None, None), {}, [])
    if not query:
        return flt
    terms, flt.warnings = parse_terms(query, free_text=flt.words if free_text else None)
    for term in terms:
        if term.field in TIMESTAMP_FIELDS:
            bounds = timestamp_bounds(term, version)
            if bounds is None:
                flt.warnings.append(f"Invalid timestamp in search term {term.field}:{term.op}{term.value}")
                continue
            flt.time_bounds[term.field] = _intersect(flt.time_bounds.get(term.field, (None, None)), bounds)
        elif term.field == "id":
            try:
                num = int(term.value.rsplit("/", 1)[-1])
            except ValueError:
                flt.warnings.append(f"Invalid id in search term {term.value!r}")
                continue
            bounds = {":": (num, num + 1), ">": (num + 1, None), ">=": (num, None), "<": (None, num),
                      "<=": (None, num + 1)}[term.op]
            flt.id_bounds = _intersect(flt.id_bounds, bounds)
        elif term.field in equality_fields and term.op == ":":
            flt.equals[term.field] = term.value.lstrip("#") if term.field == "name" else term.value
        elif term.field in list_fields and term.op == ":":
            flt.contains.setdefault(term.field, []).append(term.value)
        elif term.field.endswith("_not") and term.field[:-4] in list_fields and term.op == ":":
            flt.excludes.setdefault(term.field[:-4], []).append(term.value)
        else:
            flt.warnings.append(f"sandbox ignores search field {term.field!r}")
    return flt
