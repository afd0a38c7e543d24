"""Shopify connector (in progress: auth and signature primitives; not yet registered)."""
