"""The one client library of every component: REST, watch, informers and work queues."""

from controlplane.client.informer import Informer
from controlplane.client.leaderelection import LeaderElector
from controlplane.client.rest import Client, WatchEvent
from controlplane.client.workqueue import ShutDownError, WorkQueue

__all__ = ["Client", "Informer", "LeaderElector", "ShutDownError", "WatchEvent", "WorkQueue"]
