"""The HTTP API (aiohttp), an edge: routes call the core's services; the read-only views (SMS
funnel, dead letters) read the store's reports."""
