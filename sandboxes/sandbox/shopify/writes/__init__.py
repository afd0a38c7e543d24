"""The write side of the Admin API that cross-store flows use: orderCreate, orderCancel, fulfillment orders,
fulfillmentCreate, fulfillmentTrackingInfoUpdate, inventorySetQuantities, inventoryActivate.

Modules by purpose: ``inputs`` (argument type checks), ``orders`` (orderCreate), ``cancel`` (orderCancel),
``fulfillment_orders`` (their state and nodes), ``fulfillments`` (fulfillmentCreate, tracking updates),
``inventory`` (inventorySetQuantities, inventoryActivate), ``idempotency`` (the ``@idempotent`` directive),
``roots`` (the root fields ``resolver`` serves), ``shop_api`` (the in-process helpers on ``Shop``).
"""
