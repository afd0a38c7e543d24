"""Discovery and the store's environment: the WP REST index (``/``), the namespace indexes (``/wc/v3``,
``/wp/v2``...), ``/wc/v3/system_status``, and the legacy ``/wc-api/v3`` index.
"""

from __future__ import annotations

from typing import Any

from sandbox.woocommerce.php import php_json
from sandbox.woocommerce.rest.context import CANNOT_LIST, Ctx, RestResult, denied, json_result
from sandbox.woocommerce.rest.items import has_store_wide_variations
from sandbox.woocommerce.state import WooStore

__all__ = ["legacy_index", "namespace_index", "rest_index", "system_status"]

WC_NAMESPACES = ["wc/v1", "wc/v2", "wc/v3", "wc/store", "wc/store/v1", "wc-admin", "wc-analytics", "wc-telemetry"]
WP_NAMESPACES = ["oembed/1.0", "wp/v2", "wp-site-health/v1", "wp-block-editor/v1"]


def system_status(ctx: Ctx) -> RestResult:
    if ctx.anon:
        return denied(*CANNOT_LIST)
    store = ctx.store
    hours = store.utc_offset_s / 3600
    plugins = [{"plugin": "woocommerce/woocommerce.php", "name": "WooCommerce", "version": store.wc_version,
                "version_latest": store.wc_version, "url": "https://woocommerce.com/",
                "author_name": "Automattic", "author_url": "https://woocommerce.com", "network_activated": False}]
    body = {
        "environment": {
            "home_url": store.home_url, "site_url": store.home_url, "store_id": f"{store.name}-store",
            "version": store.wc_version, "log_directory": "/var/www/html/wp-content/uploads/wc-logs/",
            "log_directory_writable": True, "wp_version": store.wp_version, "wp_multisite": False,
            "wp_memory_limit": 268435456, "wp_debug_mode": False, "wp_cron": True, "language": "en_US",
            "external_object_cache": None, "server_info": "nginx/1.26.2", "php_version": "8.2.24",
            "php_post_max_size": 67108864, "php_max_execution_time": 60, "php_max_input_vars": 1000,
            "curl_version": "8.5.0, OpenSSL/3.0.13", "suhosin_installed": False, "max_upload_size": 67108864,
            "mysql_version": "8.0.39", "mysql_version_string": "8.0.39", "default_timezone": "UTC",
            "fsockopen_or_curl_enabled": True, "soapclient_enabled": True, "domdocument_enabled": True,
            "gzip_enabled": True, "mbstring_enabled": True, "remote_post_successful": True,
            "remote_post_response": 200, "remote_get_successful": True, "remote_get_response": 200,
        },
        "database": {"wc_database_version": store.wc_version, "database_prefix": "wp_",
                     "maxmind_geoip_database": "", "database_tables": {"woocommerce": {}, "other": {}},
                     "database_size": {"data": 12.5, "index": 4.2}},
        "active_plugins": plugins,
        "inactive_plugins": [],
        "dropins_mu_plugins": {"dropins": [], "mu_plugins": []},
        "theme": {"name": "Storefront", "version": "4.6.0", "is_child_theme": False,
                  "has_woocommerce_support": True},
        "settings": {
            "api_enabled": False, "force_ssl": False, "currency": store.currency,
            "currency_symbol": "&#36;" if store.currency in ("USD", "CAD", "AUD") else store.currency,
            "currency_position": "left", "thousand_separator": ",", "decimal_separator": ".",
            "number_of_decimals": 2, "geolocation_enabled": False,
            "taxonomies": {"external": "external", "grouped": "grouped", "simple": "simple", "variable": "variable"},
            "product_visibility_terms": {}, "woocommerce_com_connected": "no",
            "enforce_approved_download_dirs": True, "order_datastore": "Automattic\\WooCommerce\\Internal\\"
            "DataStores\\Orders\\OrdersTableDataStore", "HPOS_enabled": True, "HPOS_sync_enabled": False,
        },
        "security": {"secure_connection": ctx.req.ssl, "hide_errors": True},
        "pages": [],
        "post_type_counts": [{"type": "product", "count": len(store.catalog.p_ids)}],
        "logging": {"logging_enabled": True, "default_handler": "LogHandlerFileV2", "retention_period_days": 30,
                    "level_threshold": "none", "log_directory_size": "0 B"},
        "gmt_offset": f"{hours:g}",
    }
    return json_result(body)


def namespace_index(ctx: Ctx) -> RestResult:
    ns = ctx.url["ns"].strip("/")
    routes = {f"/{ns}": {"namespace": ns, "methods": ["GET"]}}
    if ns == "wc/v3":
        for path, methods in (("products", ["GET", "POST"]), ("products/(?P<id>[\\d]+)", ["GET", "PUT", "DELETE"]),
                              ("orders", ["GET", "POST"]), ("customers", ["GET", "POST"]),
                              ("webhooks", ["GET", "POST"]), ("system_status", ["GET"])):
            routes[f"/wc/v3/{path}"] = {"namespace": ns, "methods": methods}
        if has_store_wide_variations(ctx.store):
            routes["/wc/v3/variations"] = {"namespace": ns, "methods": ["GET"]}
    return json_result({"namespace": ns, "routes": routes,
                "_links": {"up": [{"href": ctx.store.rest_url + "/"}]}})


def rest_index(store: WooStore) -> RestResult:
    wc = store.is_woocommerce and store.rest_api
    namespaces = (WP_NAMESPACES[:1] + WC_NAMESPACES + WP_NAMESPACES[1:]) if wc else ["oembed/1.0", "wp/v2"]
    routes: dict[str, Any] = {"/": {"namespace": "", "methods": ["GET"]}}
    for ns in namespaces:
        routes[f"/{ns}"] = {"namespace": ns, "methods": ["GET"]}
    body = {
        "name": store.title, "description": "Just another WordPress site", "url": store.home_url,
        "home": store.home_url, "gmt_offset": f"{store.utc_offset_s / 3600:g}", "timezone_string": "",
        "page_for_posts": 0, "page_on_front": 0, "show_on_front": "posts", "namespaces": namespaces,
        "authentication": {"application-passwords": {"endpoints": {
            "authorization": f"{store.home_url}/wp-admin/authorize-application.php"}}},
        "site_logo": 0, "site_icon": 0, "site_icon_url": "", "routes": routes,
        "_links": {"help": [{"href": "https://developer.wordpress.org/rest-api/"}]},
    }
    return json_result(body)


def legacy_index(store: WooStore, ssl: bool) -> bytes:
    """``GET /wc-api/v3`` (the legacy REST API, removed from core in WooCommerce 9.0)."""
    return php_json({"store": {
        "name": store.title, "description": "Just another WordPress site", "URL": store.home_url,
        "wc_version": store.wc_version, "version": "3.1.0",
        "routes": {"/products": {"supports": ["HEAD", "GET", "POST"], "accepts_data": True},
                   "/orders": {"supports": ["HEAD", "GET", "POST"], "accepts_data": True},
                   "/customers": {"supports": ["HEAD", "GET", "POST"], "accepts_data": True}},
        "meta": {"timezone": f"UTC{store.utc_offset_s / 3600:+g}", "currency": store.currency,
                 "currency_format": "$", "currency_position": "left", "thousand_separator": ",",
                 "decimal_separator": ".", "price_num_decimals": 2, "tax_included": False, "weight_unit": "kg",
                 "dimension_unit": "cm", "ssl_enabled": ssl, "permalinks_enabled": True,
                 "generate_password": True,
                 "links": {"help": "https://woocommerce.github.io/woocommerce-rest-api-docs/"}},
    }})

