"""The Shopify connector (see connector.py); ``CONNECTOR`` is what the registry discovers."""

from worker.connectors.shopify.connector import ShopifyConnector

CONNECTOR = ShopifyConnector()

__all__ = ["CONNECTOR", "ShopifyConnector"]
