"""Command-line entry points of the control-plane components (`pyk8s server`, `pyk8s apiserver`, ...)."""
