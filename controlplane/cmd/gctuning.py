"""The garbage collector's thresholds for the long-running control-plane processes.

CPython's defaults (700, 10, 10) suit short programs. A control plane holds tens of
thousands of long-lived objects (informer caches, the scheduler's cache, the store's
newest values) and allocates quickly: with the defaults, the scheduler benchmark
(1,000 nodes, 10,000 pods) spent ~10 s of a 60 s run in the collector — 2,800 young
collections and 20 full ones of up to 0.5 s each, the full ones re-scanning every
cached object as the heap grew. Most of what the control plane allocates is JSON
data, freed by reference counting the moment it is dropped, so collecting cycles
far less often costs little memory. `gc.freeze()` after start-up (in the API
server) already keeps the start-up objects out of every collection.

The agent and the proxy keep the defaults: their resident memory is what matters
there, and their heaps are small.
"""

from __future__ import annotations

import gc

from controlplane import heap

# A young collection every 50,000 net allocations of container objects (instead of 700),
# a middle one every 20 of those, a full one every 10 middle ones (and, as always, only
# when the objects promoted since the last full one are a quarter of those it kept).
CONTROL_PLANE_THRESHOLDS = (50_000, 20, 10)


def tune_for_control_plane() -> None:
    gc.set_threshold(*CONTROL_PLANE_THRESHOLDS)
    heap.tune_malloc()  # freed memory goes back to the system (controlplane/heap.py)
