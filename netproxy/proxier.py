"""The sync loop: informer events -> change tracker -> rate-limited syncs of one backend.

`run_proxy` is the whole kube-proxy as a coroutine (used by `pyk8s proxy`, the
all-in-one server and the lab). Syncs are at least --min-sync-period apart; a
periodic resync runs every --sync-period, and as upstream it is a full resync
(every chain rewritten, jump rules re-ensured, stale chains of earlier runs
removed) at start, after any failure and at least every FULL_SYNC_PERIOD — a full
iptables-nft restore of 1k services takes seconds, so not every 30 s. Rules stay
in the kernel when the API server goes away or the proxy stops: only a later
sync of this proxy changes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from controlplane.api.resources import ENDPOINTSLICES, SERVICES
from controlplane.client import Client, Informer
from netproxy import conntrack
from netproxy.backend import Backend, ModeUnavailable
from netproxy.config import MODES, ProxyConfig
from netproxy.health import HealthState, HTTPServers
from netproxy.informer import StubInformer
from netproxy.leftovers import remove_other_modes
from netproxy.memory import release_free_memory
from netproxy.metrics import ProxyMetrics
from netproxy.model import Obj
from netproxy.tracker import ChangeTracker

log = logging.getLogger(__name__)
SERVICE_SELECTOR = "!service.kubernetes.io/service-proxy-name"
SLICE_SELECTOR = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
FULL_SYNC_PERIOD = 3600.0  # upstream's proxyutil.FullSyncPeriod


def make_backend(config: ProxyConfig) -> Backend:
    """The backend of `config.mode`, checked to work here (raises ModeUnavailable otherwise)."""
    if config.mode not in MODES:
        raise ModeUnavailable(f"unknown proxy mode {config.mode!r} (one of {', '.join(MODES)})")
    backend: Backend
    if config.mode == "ipvs":
        from netproxy.ipvs import IpvsBackend
        from netproxy.ipvs_render import IpvsOptions

        backend = IpvsBackend(IpvsOptions(node_name=config.node_name, cluster_cidr=config.cluster_cidr,
                                          masquerade_all=config.masquerade_all, scheduler=config.ipvs_scheduler),
                              config.nodeport_addresses)
    elif config.mode == "iptables":
        from netproxy.iptables_backend import IptablesBackend, detect_variant
        from netproxy.iptables_render import RenderOptions

        opts = RenderOptions(node_name=config.node_name, cluster_cidr=config.cluster_cidr,
                             masquerade_all=config.masquerade_all)
        backend = IptablesBackend(opts, detect_variant(config.iptables_backend), config.nodeport_addresses)
    else:
        from netproxy.nftables_backend import NftablesBackend
        from netproxy.nftables_render import NftOptions

        backend = NftablesBackend(NftOptions(node_name=config.node_name, cluster_cidr=config.cluster_cidr,
                                             masquerade_all=config.masquerade_all), config.nodeport_addresses)
    backend.check()
    return backend


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


class Proxier:
    def __init__(self, config: ProxyConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.tracker = ChangeTracker(config.node_name)
        self.metrics = ProxyMetrics()
        self.health = HealthState(config.node_name, config.sync_period)
        self._wake = asyncio.Event()
        self._need_full = True
        self._udp: conntrack.UdpView | None = None
        self._last_sync = float("-inf")
        self._last_full = float("-inf")
        self.syncs = 0

    # -- informer handlers ------------------------------------------------------------

    def _queue(self, changed: bool) -> None:
        if changed:
            self.health.queued()
            self.metrics.last_queued_timestamp = time.time()
            self._wake.set()

    def on_service(self, *objs: Obj) -> None:
        self._service_changed(self.tracker.update_service(objs[-1]))

    def on_service_delete(self, obj: Obj) -> None:
        self._service_changed(self.tracker.delete_service(obj))

    def on_slice(self, *objs: Obj) -> None:
        self._slice_changed(self.tracker.update_slice(objs[-1]))

    def on_slice_delete(self, obj: Obj) -> None:
        self._slice_changed(self.tracker.delete_slice(obj))

    def _service_changed(self, changed: bool) -> None:
        self.metrics.service_changes += changed
        self._queue(changed)

    def _slice_changed(self, changed: bool) -> None:
        self.metrics.endpoint_changes += changed
        self._queue(changed)

    # -- syncing ----------------------------------------------------------------------

    async def sync(self, full: bool = False) -> None:
        full = full or self._need_full
        snap = self.tracker.snapshot(full=full)
        start = time.monotonic()
        self._last_sync = start
        try:
            stats = await self.backend.sync(snap)
        except Exception:
            self._need_full = True  # the changed set is gone: only a full sync is right now
            self.metrics.restore_failures += 1
            raise
        elapsed = time.monotonic() - start
        self._need_full = False
        if full:
            self._last_full = start
        self.syncs += 1
        self.metrics.observe_sync(elapsed, full)
        self.metrics.rules = stats.rules
        self.metrics.no_local_endpoints = {"internal": stats.no_local_internal,
                                           "external": stats.no_local_external}
        self.metrics.services = snap.port_count
        self.metrics.endpoints = snap.endpoint_count
        self.health.updated()
        now = time.time()
        for trigger in snap.trigger_times:
            self.metrics.network_programming.observe(max(0.0, now - trigger))
        log.info("%s sync (%s) of %d service ports took %.3fs", self.backend.mode, "full" if full else "partial",
                 snap.port_count, elapsed)
        view = conntrack.udp_view(snap)
        if self._udp is not None:
            nat_match = getattr(self.backend, "conntrack_nat_match", "--dst-nat")
            await conntrack.flush(conntrack.stale_commands(self._udp, view, nat_match))
        self._udp = view
        if full:
            del snap
            release_free_memory()  # a full sync's ruleset text is gone now: so is the memory it took

    async def run(self, stop: asyncio.Event) -> None:
        """Sync on changes (at most every min_sync_period) and fully every sync_period, until `stop`."""
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                now = time.monotonic()
                periodic_in = max(0.0, self._last_sync + self.config.sync_period - now)
                if not self._need_full and not self._wake.is_set():
                    waker = asyncio.create_task(self._wake.wait())
                    await asyncio.wait({waker, stopper}, timeout=periodic_in,
                                       return_when=asyncio.FIRST_COMPLETED)
                    waker.cancel()
                if stop.is_set():
                    break
                holdoff = self._last_sync + self.config.min_sync_period - time.monotonic()
                if holdoff > 0:
                    await _wait(stop, holdoff)
                    if stop.is_set():
                        break
                self._wake.clear()
                full = time.monotonic() >= self._last_full + max(self.config.sync_period, FULL_SYNC_PERIOD)
                try:
                    await self.sync(full=full)
                except Exception as exc:
                    log.error("%s sync failed (%s); retrying with a full sync", self.backend.mode, exc)
                    await _wait(stop, max(self.config.min_sync_period, 1.0))
        finally:
            stopper.cancel()


async def _both_synced(a: Informer, b: Informer) -> bool:
    await a.wait_synced()
    await b.wait_synced()
    return True


async def run_proxy(config: ProxyConfig, stop: asyncio.Event, *, client: Client | None = None) -> None:
    """The proxy until `stop` is set. Raises ModeUnavailable when the mode cannot run here."""
    backend = make_backend(config)
    await remove_other_modes(backend.mode, getattr(backend, "variant", None))
    proxier = Proxier(config, backend)
    servers = HTTPServers(proxier.health, lambda: proxier.metrics.render(backend.mode))
    await servers.start(config.healthz_bind_address, config.metrics_bind_address)
    own_client = client is None
    api = client or Client.from_kubeconfig(config.kubeconfig)
    # the tracker keeps what the rules need; the informers' caches only stubs (netproxy.informer)
    services = StubInformer(api, SERVICES, label_selector=SERVICE_SELECTOR)
    slices = StubInformer(api, ENDPOINTSLICES, label_selector=SLICE_SELECTOR)
    services.add_handler(proxier.on_service, proxier.on_service, proxier.on_service_delete)
    slices.add_handler(proxier.on_slice, proxier.on_slice, proxier.on_slice_delete)
    try:
        await services.start()
        await slices.start()
        synced = asyncio.ensure_future(_both_synced(services, slices))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([synced, stopper], return_when=asyncio.FIRST_COMPLETED)
        synced.cancel()
        stopper.cancel()
        if not stop.is_set():
            log.info("proxy %s in %s mode: services and endpoint slices synced", config.node_name, backend.mode)
            await proxier.run(stop)
    finally:
        await services.stop()
        await slices.stop()
        if own_client:
            await api.close()
        await servers.stop()
