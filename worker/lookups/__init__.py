"""Look-ups for agents (docs/agents.md): customers, orders and products of a store, answered in the canonical
model from the synced tables when the store's access policy for the resource is ``sync``, live from the platform
when it is ``api_only`` (nothing kept), refused when it is ``not_allowed``.

One implementation (``service.LookupService``) behind two interfaces: HTTP endpoints with an OpenAPI 3.1
description (``http``) and an MCP server (``mcp_server``: streamable HTTP in the web process, stdio through
``shopsync mcp``). ``operations`` lists the look-ups once: their parameters, answers and descriptions feed both.
"""
