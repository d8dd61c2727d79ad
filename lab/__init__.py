"""The multi-node lab: a cluster of network namespaces on one machine (`pyk8s lab ...`)."""
