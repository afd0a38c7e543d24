"""GraphQL documents of the Shopify sync (Admin API 2026-10). Constants only.

Costs follow Shopify's rule (object 1, connection ``2 + first × node``, single query max 1000): the page
sizes of the paginated documents are chosen so each request stays well under 1000; children that do not
fit are paged further with the ``*_MORE`` documents.
"""

from __future__ import annotations

# --- field selections -------------------------------------------------------------------------------------

_MONEY = "shopMoney { amount currencyCode }"
_ADDRESS = ("firstName lastName name company address1 address2 city province provinceCode country countryCodeV2 "
            "zip phone")
PRODUCT_FIELDS = "id title handle status vendor productType tags createdAt updatedAt"
VARIANT_FIELDS = "id title sku barcode price compareAtPrice position inventoryQuantity updatedAt"
LEVEL_FIELDS = 'id location { id } item { id } quantities(names: ["available", "on_hand"]) { name quantity } updatedAt'
# nested under its inventory item the level's item is known: one object less per level
NESTED_LEVEL_FIELDS = 'id location { id } quantities(names: ["available", "on_hand"]) { name quantity } updatedAt'
LOCATION_FIELDS = "id name isActive updatedAt"
CUSTOMER_FIELDS = ("id email phone firstName lastName state tags createdAt updatedAt numberOfOrders "
                   "amountSpent { amount currencyCode } emailMarketingConsent { marketingState } "
                   f"defaultAddress {{ {_ADDRESS} }}")
FULFILLMENT_FIELDS = "id status createdAt updatedAt trackingInfo(first: 5) { company number url }"
ORDER_FIELDS = ("id name email phone displayFinancialStatus displayFulfillmentStatus currencyCode "
                f"subtotalPriceSet {{ {_MONEY} }} totalTaxSet {{ {_MONEY} }} totalDiscountsSet {{ {_MONEY} }} "
                f"totalShippingPriceSet {{ {_MONEY} }} totalPriceSet {{ {_MONEY} }} totalRefundedSet {{ {_MONEY} }} "
                f"customer {{ id }} shippingAddress {{ {_ADDRESS} }} billingAddress {{ {_ADDRESS} }} "
                "tags processedAt cancelledAt closedAt createdAt updatedAt")
LINE_ITEM_FIELDS = (f"id title sku quantity product {{ id }} variant {{ id }} originalUnitPriceSet {{ {_MONEY} }} "
                    f"totalDiscountSet {{ {_MONEY} }}")
PAGE_INFO = "pageInfo { hasNextPage endCursor }"

# lists (not connections) inline in an order: a full list is fetched again with the larger limits
ORDER_LISTS_IN_PAGE = f"fulfillments(first: 5) {{ {FULFILLMENT_FIELDS} }} refunds(first: 10) {{ id }}"
ORDER_LISTS_FULL = f"fulfillments(first: 100) {{ {FULFILLMENT_FIELDS} }} refunds(first: 100) {{ id }}"
ORDER_FULFILLMENTS_IN_PAGE = 5
ORDER_REFUNDS_IN_PAGE = 10

# --- bulk operations (full sync) -------------------------------------------------------------------------

BULK_PRODUCTS = f"""{{
  products {{ edges {{ node {{
    {PRODUCT_FIELDS}
    variants {{ edges {{ node {{
      {VARIANT_FIELDS}
      inventoryItem {{ id inventoryLevels {{ edges {{ node {{ {LEVEL_FIELDS} }} }} }} }}
    }} }} }}
  }} }} }}
}}"""

BULK_CUSTOMERS = f"""{{
  customers {{ edges {{ node {{ {CUSTOMER_FIELDS} }} }} }}
}}"""

BULK_ORDERS = f"""{{
  orders {{ edges {{ node {{
    {ORDER_FIELDS}
    fulfillments(first: 250) {{ {FULFILLMENT_FIELDS} }}
    refunds(first: 250) {{ id }}
    lineItems {{ edges {{ node {{ {LINE_ITEM_FIELDS} }} }} }}
  }} }} }}
}}"""

BULK_RUN = """mutation RunBulk($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status createdAt }
    userErrors { field message code }
  }
}"""

BULK_OPERATION_FIELDS = "id status errorCode createdAt completedAt objectCount url query"

BULK_STATUS = f"""query BulkStatus($id: ID!) {{
  bulkOperation(id: $id) {{ {BULK_OPERATION_FIELDS} }}
}}"""

BULK_CURRENT = f"""query CurrentBulk {{
  currentBulkOperation(type: QUERY) {{ {BULK_OPERATION_FIELDS} }}
}}"""

# --- paginated queries (incremental sync) ------------------------------------------------------------------

PRODUCTS_VARIANTS_IN_PAGE = 4
PRODUCT_LEVELS_IN_PAGE = 3
LOCATIONS_IN_PAGE = 20

PRODUCTS_PAGE = f"""query ProductsPage($first: Int!, $after: String, $query: String, $withLocations: Boolean!) {{
  locations(first: {LOCATIONS_IN_PAGE}, includeInactive: true) @include(if: $withLocations) {{
    nodes {{ {LOCATION_FIELDS} }} {PAGE_INFO}
  }}
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    nodes {{
      {PRODUCT_FIELDS}
      variants(first: {PRODUCTS_VARIANTS_IN_PAGE}) {{
        nodes {{
          {VARIANT_FIELDS}
          inventoryItem {{ id inventoryLevels(first: {PRODUCT_LEVELS_IN_PAGE}) {{
            nodes {{ {NESTED_LEVEL_FIELDS} }} {PAGE_INFO} }} }}
        }}
        {PAGE_INFO}
      }}
    }}
    {PAGE_INFO}
  }}
}}"""
PRODUCTS_PAGE_SIZE = 16

PRODUCT_VARIANTS_MORE = f"""query VariantsMore($id: ID!, $first: Int!, $after: String) {{
  product(id: $id) {{
    variants(first: $first, after: $after) {{
      nodes {{
        {VARIANT_FIELDS}
        inventoryItem {{ id inventoryLevels(first: {PRODUCT_LEVELS_IN_PAGE}) {{
          nodes {{ {NESTED_LEVEL_FIELDS} }} {PAGE_INFO} }} }}
      }}
      {PAGE_INFO}
    }}
  }}
}}"""
PRODUCT_VARIANTS_MORE_SIZE = 50

LEVELS_MORE = f"""query LevelsMore($id: ID!, $first: Int!, $after: String) {{
  inventoryItem(id: $id) {{
    inventoryLevels(first: $first, after: $after) {{ nodes {{ {NESTED_LEVEL_FIELDS} }} {PAGE_INFO} }}
  }}
}}"""
LEVELS_MORE_SIZE = 200

LOCATIONS_PAGE = f"""query LocationsPage($first: Int!, $after: String) {{
  locations(first: $first, after: $after, includeInactive: true) {{ nodes {{ {LOCATION_FIELDS} }} {PAGE_INFO} }}
}}"""
LOCATIONS_PAGE_SIZE = 250

CUSTOMERS_PAGE = f"""query CustomersPage($first: Int!, $after: String, $query: String) {{
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    nodes {{ {CUSTOMER_FIELDS} }}
    {PAGE_INFO}
  }}
}}"""
CUSTOMERS_PAGE_SIZE = 200

ORDER_LINE_ITEMS_IN_PAGE = 5

ORDERS_PAGE = f"""query OrdersPage($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    nodes {{
      {ORDER_FIELDS}
      {ORDER_LISTS_IN_PAGE}
      lineItems(first: {ORDER_LINE_ITEMS_IN_PAGE}) {{ nodes {{ {LINE_ITEM_FIELDS} }} {PAGE_INFO} }}
    }}
    {PAGE_INFO}
  }}
}}"""
ORDERS_PAGE_SIZE = 12

ORDER_LINE_ITEMS_MORE = f"""query LineItemsMore($id: ID!, $first: Int!, $after: String) {{
  order(id: $id) {{
    lineItems(first: $first, after: $after) {{ nodes {{ {LINE_ITEM_FIELDS} }} {PAGE_INFO} }}
  }}
}}"""
ORDER_LINE_ITEMS_MORE_SIZE = 100

ORDER_LISTS_MORE = f"""query OrderListsMore($id: ID!) {{
  order(id: $id) {{ {ORDER_LISTS_FULL} }}
}}"""

# --- id-only pages (reconciliation) ---------------------------------------------------------------------

PRODUCT_IDS_VARIANTS_IN_PAGE = 5
PRODUCT_IDS = f"""query ProductIds($first: Int!, $after: String) {{
  products(first: $first, after: $after, sortKey: ID) {{
    nodes {{ id variants(first: {PRODUCT_IDS_VARIANTS_IN_PAGE}) {{ nodes {{ id }} {PAGE_INFO} }} }}
    {PAGE_INFO}
  }}
}}"""
PRODUCT_IDS_PAGE_SIZE = 120   # 2 + 120 × (1 + 2 + 5) = 962: variants must come along

VARIANT_IDS_MORE = f"""query VariantIdsMore($id: ID!, $first: Int!, $after: String) {{
  product(id: $id) {{ variants(first: $first, after: $after) {{ nodes {{ id }} {PAGE_INFO} }} }}
}}"""

CUSTOMER_IDS = f"""query CustomerIds($first: Int!, $after: String) {{
  customers(first: $first, after: $after, sortKey: ID) {{ nodes {{ id }} {PAGE_INFO} }}
}}"""

ORDER_IDS = f"""query OrderIds($first: Int!, $after: String) {{
  orders(first: $first, after: $after, sortKey: ID) {{ nodes {{ id }} {PAGE_INFO} }}
}}"""
ID_PAGE_SIZE = 250

# confirms that reconciliation candidates are really gone (null) before they are soft-deleted
NODES_EXIST = """query NodesExist($ids: [ID!]!) {
  nodes(ids: $ids) { id }
}"""
NODES_EXIST_SIZE = 100
