"""The WooCommerce connector (see connector.py); ``CONNECTOR`` is what the registry discovers."""

from worker.connectors.woocommerce.connector import WooConnector

CONNECTOR = WooConnector()

__all__ = ["CONNECTOR", "WooConnector"]
