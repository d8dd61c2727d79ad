"""pyk8s: a Kubernetes implementation in Python.

This package holds only the command-line entry point; the components live in
the top-level packages `controlplane`, `cri`, `agent` and `netproxy`.
"""

__version__ = "0.1.0"
