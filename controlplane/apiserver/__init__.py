"""The Kubernetes API server: REST, discovery, watch, patch and subresources over HTTPS (aiohttp)."""
