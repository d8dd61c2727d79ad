"""The control plane: API machinery, storage, API server, scheduler, controllers and the client.

Nothing here imports `agent`, `netproxy` or `cri` (DESIGN.md §1).
"""
