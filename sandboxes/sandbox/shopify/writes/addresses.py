"""``MailingAddressInput`` -> the catalog's address record, with the checks the sandbox makes of it.

Shopify's own address validation is richer and not documented field by field; the sandbox refuses what is
plainly wrong (a province code that does not exist in the US, Canada or Australia, a US ZIP code that is not
five or nine digits) with an ``INVALID`` userError naming the field, and stores everything else as sent. An
unknown ``countryCode`` never gets here: it is not a ``CountryCode`` enum value, so the input check refuses it.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["address_errors", "address_record"]

_PROVINCES = {
    "US": frozenset("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM "
                    "NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI UM AA AE AP".split()),
    "CA": frozenset("AB BC MB NB NL NS NT NU ON PE QC SK YT".split()),
    "AU": frozenset("ACT NSW NT QLD SA TAS VIC WA".split()),
}
_COUNTRY_NAMES = {"US": "United States", "CA": "Canada", "DE": "Germany", "GB": "United Kingdom", "FR": "France",
                  "HU": "Hungary", "AU": "Australia", "AT": "Austria", "NL": "Netherlands", "IT": "Italy",
                  "ES": "Spain", "PL": "Poland", "CZ": "Czechia", "SK": "Slovakia", "RO": "Romania"}
_US_ZIP = re.compile(r"^\d{5}(-?\d{4})?$")


def address_errors(addr: dict[str, Any], path: list[str]) -> list[tuple[list[str], str]]:
    """(field path, message) for each plainly invalid part of an address."""
    out: list[tuple[list[str], str]] = []
    country = addr.get("countryCode")
    province = addr.get("provinceCode")
    if country in _PROVINCES and province is not None and str(province).upper() not in _PROVINCES[country]:
        out.append(([*path, "provinceCode"], f"Province code {province} is not valid for {country}"))
    zip_code = addr.get("zip")
    if country == "US" and zip_code is not None and not _US_ZIP.match(str(zip_code).strip()):
        out.append(([*path, "zip"], f"Zip {zip_code} is not valid for United States"))
    return out


def address_record(addr: dict[str, Any] | None, address_id: int) -> dict[str, Any] | None:
    """The catalog's address shape (what ``nodes.mailing_address`` and the REST payloads read)."""
    if not addr:
        return None
    first, last = addr.get("firstName"), addr.get("lastName")
    country = addr.get("countryCode") or None
    province = addr.get("provinceCode") or addr.get("province") or None
    return {
        "id": address_id,
        "first_name": first,
        "last_name": last,
        "name": " ".join(p for p in (first, last) if p) or None,
        "company": addr.get("company"),
        "address1": addr.get("address1"),
        "address2": addr.get("address2"),
        "city": addr.get("city"),
        "province_code": str(province).upper() if province else None,
        "country_code": country,
        "country": _COUNTRY_NAMES.get(str(country), country) if country else addr.get("country"),
        "zip": addr.get("zip"),
        "phone": addr.get("phone"),
    }
