"""The TikTok Shop connector (see connector.py); ``CONNECTOR`` is what the registry discovers."""

from worker.connectors.tiktok.connector import TikTokConnector

CONNECTOR = TikTokConnector()

__all__ = ["CONNECTOR", "TikTokConnector"]
