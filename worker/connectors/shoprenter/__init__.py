"""The ShopRenter connector (see connector.py); ``CONNECTOR`` is what the registry discovers."""

from worker.connectors.shoprenter.connector import ShopRenterConnector

CONNECTOR = ShopRenterConnector()

__all__ = ["CONNECTOR", "ShopRenterConnector"]
