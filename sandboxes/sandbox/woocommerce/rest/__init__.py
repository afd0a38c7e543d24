"""The WP REST API of one store: authentication, routing, parameter validation and the WooCommerce v3 handlers.

Request flow, as in ``WP_REST_Server::serve_request``: WooCommerce authentication (only for ``wc/`` and ``wc-``
routes) → API-key read/write permissions (``rest_pre_dispatch``) → route match (404 ``rest_no_route``) →
parameter validation (400 ``rest_invalid_param`` / ``rest_missing_callback_param``; unknown parameters are
ignored, e.g. ``modified_after`` on ``/customers``) → the route's permission callback (anonymous requests get
401 ``woocommerce_rest_cannot_view`` etc.; a single-object GET of an ID that does not exist answers 404 first) →
the handler.

Modules: ``router`` (the route table and ``dispatch``), ``context`` (request, result, shared error answers),
``params`` (validation), ``items`` and ``listing`` (what list and single-object answers share: rendered items,
``_fields``, pagination headers and links, date bounds, sort orders), one module per resource (``products``,
``variations``, ``customers``, ``orders``, ``webhooks``) and ``discovery`` (indexes and ``system_status``).
"""

from sandbox.woocommerce.rest.context import JSON_TYPE, RestRequest, RestResult
from sandbox.woocommerce.rest.discovery import legacy_index
from sandbox.woocommerce.rest.router import dispatch

__all__ = ["JSON_TYPE", "RestRequest", "RestResult", "dispatch", "legacy_index"]
