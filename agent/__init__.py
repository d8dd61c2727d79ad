"""The node agent (kubelet): drives the node's containerd through CRI on behalf of the API server."""
