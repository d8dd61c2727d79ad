"""Control loops: informers plus work queues that drive the cluster toward its declared state."""
