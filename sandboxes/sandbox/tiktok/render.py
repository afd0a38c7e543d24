"""Records → the Open API's JSON shapes (Search Products 202502, Get Product 202309, Get Order List/Detail
202309, Get Warehouse List 202309, Get Authorized Shops 202309). Amounts are strings, times unix seconds,
ids strings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.tiktok.model import TtOrder, TtProduct, TtShopInfo, TtSku, TtWarehouse

__all__ = ["amount", "order_json", "product_json", "shop_json", "sku_json", "warehouse_json"]


def amount(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def sku_json(sku: TtSku, currency: str, warehouses: list[TtWarehouse] | None = None) -> dict[str, Any]:
    return {"id": sku.id, "seller_sku": sku.seller_sku,
            "price": {"currency": currency, "sale_price": amount(sku.price), "tax_exclusive_price": amount(sku.price)},
            "inventory": [{"warehouse_id": w, "quantity": q} for w, q in sku.inventory.items()],
            "status_info": {"status": "DEACTIVATED" if sku.status != "NORMAL" else "NORMAL"}}


def product_json(p: TtProduct, *, detail: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": p.id, "title": p.title, "status": p.status, "create_time": p.create_time,
                            "update_time": p.update_time, "sales_regions": ["US"],
                            "audit": {"status": p.audit_status},
                            "skus": [sku_json(s, p.currency) for s in p.live_skus()]}
    if detail:
        body.update({"product_status": "ACTIVATE" if p.status in ("PENDING", "FAILED") else p.status,
                     "description": f"<p>{p.title}</p>", "has_draft": False, "is_not_for_sale": False})
    return body


def order_json(o: TtOrder, shop: TtShopInfo) -> dict[str, Any]:
    sub = sum((line.sale_price for line in o.lines), Decimal(0))
    original = sum((line.original_price for line in o.lines), Decimal(0))
    return {
        "id": o.id, "status": o.status, "create_time": o.create_time, "update_time": o.update_time,
        "paid_time": o.paid_time, "cancel_time": o.cancel_time, "buyer_email": o.buyer_email,
        "user_id": o.user_id, "order_type": "NORMAL", "shipping_type": "TIKTOK",
        "fulfillment_type": "FULFILLMENT_BY_SELLER", "is_cod": False, "is_on_hold_order": o.status == "ON_HOLD",
        "recipient_address": {"name": o.recipient_name, "full_address": "1 Main St, Austin, TX 78701",
                              "address_line1": "1 Main St", "postal_code": "78701", "region_code": shop.region,
                              "phone_number": "(+1)512****00"},
        "payment": {"currency": o.currency, "sub_total": amount(sub), "shipping_fee": amount(o.shipping_fee),
                    "original_total_product_price": amount(original), "seller_discount": "0.00",
                    "platform_discount": "0.00", "tax": "0.00", "total_amount": amount(sub + o.shipping_fee)},
        "line_items": [{"id": line.id, "sku_id": line.sku_id, "seller_sku": line.seller_sku,
                        "product_id": line.product_id, "product_name": line.product_name,
                        "sku_name": line.seller_sku, "sale_price": amount(line.sale_price),
                        "original_price": amount(line.original_price), "currency": o.currency,
                        "display_status": o.status, "seller_discount": "0.00", "platform_discount": "0.00",
                        "is_gift": False} for line in o.lines],
    }


def warehouse_json(w: TtWarehouse, shop: TtShopInfo) -> dict[str, Any]:
    return {"id": w.id, "name": w.name, "is_default": w.is_default, "effect_status": w.effect_status,
            "type": w.type, "sub_type": "DOMESTIC_WAREHOUSE",
            "address": {"region": shop.region, "region_code": shop.region, "city": "Austin", "postal_code": "78701",
                        "full_address": "1 Main St, Austin, TX 78701", "contact_person": "Warehouse desk"}}


def shop_json(s: TtShopInfo) -> dict[str, Any]:
    return {"cipher": s.cipher, "code": s.code, "id": s.id, "name": s.name, "region": s.region,
            "seller_type": s.seller_type}
