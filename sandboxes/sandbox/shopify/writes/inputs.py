"""Type checks for the write mutations' arguments, the way Shopify's GraphQL layer refuses bad input.

The sandbox has no schema engine (``gql.py``), so the input objects the write side reads are declared here
(field -> GraphQL type, ``!`` required, ``[T]`` a list; Shopify 2026-10 per the research notes). A bad
argument fails the field before the resolver runs, with graphql-ruby's messages: an unknown, missing or
ill-typed value inside a *variable* is ``INVALID_VARIABLE`` ("Variable $order of type
OrderCreateOrderInput! was provided invalid value for lineItems.0.quantity (...)"); inside a literal it is
``argumentLiteralsIncompatible``; a missing required argument ``missingRequiredArguments``; an unknown one
``argumentNotAccepted``. Shopify's ``inventoryBehavior`` (American spelling) trap is one of these: the
options type only has ``inventoryBehaviour``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.shopify.clock import parse_timestamp
from sandbox.shopify.gql import Field, Variable
from sandbox.shopify.project import FieldError

__all__ = ["COUNTRY_CODES", "ENUMS", "INPUT_TYPES", "check_arguments"]

COUNTRY_CODES = frozenset((
    "AC AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW "
    "BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ "
    "FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ "
    "IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH "
    "MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL "
    "PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TA TC "
    "TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW "
    "ZZ").split())

ENUMS: dict[str, frozenset[str]] = {
    "CountryCode": COUNTRY_CODES,
    "OrderCreateFinancialStatus": frozenset({"PENDING", "AUTHORIZED", "PARTIALLY_PAID", "PAID", "PARTIALLY_REFUNDED",
                                             "REFUNDED", "VOIDED", "EXPIRED"}),
    "OrderCreateFulfillmentStatus": frozenset({"FULFILLED", "PARTIAL", "RESTOCKED"}),
    "OrderCreateInputsInventoryBehavior": frozenset({"BYPASS", "DECREMENT_IGNORING_POLICY",
                                                     "DECREMENT_OBEYING_POLICY"}),
    "OrderCancelReason": frozenset({"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER"}),
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# Input objects: field -> type. Types not listed here and not in ENUMS are scalars (checked below when known).
INPUT_TYPES: dict[str, dict[str, str]] = {
    "OrderCreateOrderInput": {
        "billingAddress": "MailingAddressInput", "shippingAddress": "MailingAddressInput",
        "buyerAcceptsMarketing": "Boolean", "closedAt": "DateTime", "companyLocationId": "ID",
        "currency": "CurrencyCode",
        "presentmentCurrency": "CurrencyCode", "customAttributes": "[AttributeInput!]", "customer": "JSON",
        "customerId": "ID", "discountCode": "JSON", "email": "String", "phone": "String", "note": "String",
        "name": "String", "poNumber": "String", "financialStatus": "OrderCreateFinancialStatus",
        "fulfillment": "JSON", "fulfillmentStatus": "OrderCreateFulfillmentStatus",
        "lineItems": "[OrderCreateLineItemInput!]", "metafields": "JSON", "processedAt": "DateTime",
        "referringSite": "URL", "sourceUrl": "URL", "shippingLines": "[OrderCreateShippingLineInput!]",
        "sourceIdentifier": "String", "sourceName": "String", "tags": "[String!]", "taxesIncluded": "Boolean",
        "taxLines": "JSON", "test": "Boolean", "transactions": "JSON", "userId": "ID"},
    "OrderCreateOptionsInput": {"inventoryBehaviour": "OrderCreateInputsInventoryBehavior",
                                "sendReceipt": "Boolean", "sendFulfillmentReceipt": "Boolean"},
    # ``country``/``province`` are deprecated (hidden from the 2026 dumps) but still accepted
    "MailingAddressInput": {"address1": "String", "address2": "String", "city": "String", "company": "String",
                            "countryCode": "CountryCode", "firstName": "String", "lastName": "String",
                            "phone": "String", "provinceCode": "String", "zip": "String", "country": "String",
                            "province": "String"},
    "OrderCreateLineItemInput": {
        "quantity": "Int!", "variantId": "ID", "productId": "ID", "title": "String", "variantTitle": "String",
        "sku": "String", "vendor": "String", "priceSet": "MoneyBagInput", "properties": "[LineItemPropertyInput!]",
        "requiresShipping": "Boolean", "taxable": "Boolean", "giftCard": "Boolean", "taxLines": "JSON",
        "weight": "JSON", "fulfillmentService": "String"},
    "OrderCreateShippingLineInput": {"title": "String!", "priceSet": "MoneyBagInput!", "code": "String",
                                     "source": "String", "taxLines": "JSON"},
    "LineItemPropertyInput": {"name": "String!", "value": "String!"},
    "AttributeInput": {"key": "String!", "value": "String!"},
    "MoneyBagInput": {"shopMoney": "MoneyInput!", "presentmentMoney": "MoneyInput"},
    "MoneyInput": {"amount": "Decimal!", "currencyCode": "CurrencyCode!"},
    "OrderCancelRefundMethodInput": {"originalPaymentMethodsRefund": "Boolean",
                                     "storeCreditRefund": "StoreCreditRefundInput"},
    "StoreCreditRefundInput": {"expiresAt": "DateTime"},
    "FulfillmentInput": {"lineItemsByFulfillmentOrder": "[FulfillmentOrderLineItemsInput!]!",
                         "notifyCustomer": "Boolean", "originAddress": "FulfillmentOriginAddressInput",
                         "trackingInfo": "FulfillmentTrackingInput"},
    "FulfillmentOrderLineItemsInput": {"fulfillmentOrderId": "ID!",
                                       "fulfillmentOrderLineItems": "[FulfillmentOrderLineItemInput!]"},
    "FulfillmentOrderLineItemInput": {"id": "ID!", "quantity": "Int!"},
    "FulfillmentTrackingInput": {"company": "String", "number": "String", "numbers": "[String!]", "url": "URL",
                                 "urls": "[URL!]"},
    "FulfillmentOriginAddressInput": {"address1": "String", "address2": "String", "city": "String",
                                      "countryCode": "String!", "provinceCode": "String", "zip": "String"},
    "InventorySetQuantitiesInput": {"name": "String!", "reason": "String!", "referenceDocumentUri": "String",
                                    "quantities": "[InventoryQuantityInput!]!", "ignoreCompareQuantity": "Boolean"},
    "InventoryQuantityInput": {"inventoryItemId": "ID!", "locationId": "ID!", "quantity": "Int!",
                               "changeFromQuantity": "Int", "compareQuantity": "Int"},
}
# compare-and-swap redesign (2026-04): these inputs are gone from that version on
REMOVED_FROM_2026_04 = {("InventorySetQuantitiesInput", "ignoreCompareQuantity"),
                        ("InventoryQuantityInput", "compareQuantity")}


class _Problem(Exception):
    def __init__(self, path: list[str | int], explanation: str, type_name: str) -> None:
        super().__init__(explanation)
        self.path = path
        self.explanation = explanation
        self.type_name = type_name


def _check(value: Any, type_ref: str, path: list[str | int], modern: bool) -> None:
    required = type_ref.endswith("!")
    base = type_ref[:-1] if required else type_ref
    if value is None:
        if required:
            raise _Problem(path, "Expected value to not be null", base)
        return
    if base.startswith("["):
        inner = base[1:-1]
        for n, item in enumerate(value if isinstance(value, list) else [value]):
            _check(item, inner, [*path, n], modern)
        return
    fields = INPUT_TYPES.get(base)
    if fields is not None:
        if not isinstance(value, dict):
            raise _Problem(path, f"Expected {json.dumps(value)} to be a key-value object", base)
        for key in value:
            if key not in fields or (modern and (base, key) in REMOVED_FROM_2026_04):
                raise _Problem([*path, key], f"Field is not defined on {base}", base)
        for key, sub in fields.items():
            _check(value.get(key), sub, [*path, key], modern)
        return
    _check_scalar(value, base, path)


def _check_scalar(value: Any, base: str, path: list[str | int]) -> None:
    ok = True
    if base in ENUMS:
        if value not in ENUMS[base]:
            raise _Problem(path, f"Expected {json.dumps(value)} to be one of: {', '.join(sorted(ENUMS[base]))}", base)
    elif base == "CurrencyCode":
        ok = isinstance(value, str) and bool(_CURRENCY.match(value))
    elif base == "Int":
        ok = isinstance(value, int) and not isinstance(value, bool) and -(2 ** 31) <= value < 2 ** 31
    elif base == "Boolean":
        ok = isinstance(value, bool)
    elif base in ("String", "URL"):
        ok = isinstance(value, str)
    elif base == "ID":
        ok = isinstance(value, str | int) and not isinstance(value, bool)
    elif base == "Decimal":
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
    elif base == "DateTime":
        ok = isinstance(value, str) and parse_timestamp(value) is not None
    if not ok:
        raise _Problem(path, f"Could not coerce value {json.dumps(value)} to {base}", base)


def check_arguments(fld: Field, args: dict[str, Any], spec: dict[str, str], *, modern: bool = True) -> None:
    """Raise the FieldError Shopify's validation would give for ``fld``'s arguments (``spec``: name -> type);
    ``modern``: the API version is 2026-04 or later (the removed compare-quantity inputs are refused)."""
    for name in args:
        if name not in spec:
            raise FieldError(f"Field '{fld.name}' doesn't accept argument '{name}'", "argumentNotAccepted",
                             name=fld.name, typeName="Field", argumentName=name)
    missing = [name for name, t in spec.items() if t.endswith("!") and name not in fld.arguments]
    if missing:
        raise FieldError(f"Field '{fld.name}' is missing required arguments: {', '.join(missing)}",
                         "missingRequiredArguments", className="Field", name=fld.name, arguments=", ".join(missing))
    for name, type_ref in spec.items():
        try:
            _check(args.get(name), type_ref, [], modern)
        except _Problem as problem:
            raw = fld.arguments.get(name)
            if isinstance(raw, Variable):
                where = f" for {'.'.join(str(p) for p in problem.path)}" if problem.path else ""
                raise FieldError(f"Variable ${raw.name} of type {type_ref} was provided invalid value{where} "
                                 f"({problem.explanation})", "INVALID_VARIABLE", value=args.get(name),
                                 problems=[{"path": problem.path, "explanation": problem.explanation}]) from None
            last = str(problem.path[-1]) if problem.path else name
            if problem.explanation.startswith("Field is not defined"):
                raise FieldError(f"InputObject '{problem.type_name}' doesn't accept argument '{last}'",
                                 "argumentNotAccepted", name=problem.type_name, typeName="InputObject",
                                 argumentName=last) from None
            raise FieldError(f"Argument '{last}' on Field '{fld.name}' has an invalid value "
                             f"({problem.explanation}).", "argumentLiteralsIncompatible", argumentName=last) from None
