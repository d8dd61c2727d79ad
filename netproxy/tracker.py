"""What the API says now, and which services changed since the last sync.

Informer handlers feed Service and EndpointSlice objects in; a sync takes a
`Snapshot` (every service port with its merged, sorted endpoints) together with
the set of services that changed, so a backend can rewrite only those and the
proxier can rate-limit syncs without losing a change.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

from netproxy.model import (
    SERVICE_NAME_LABEL,
    Endpoint,
    Obj,
    ServicePort,
    ServicePortName,
    common,
    own,
    service_ports,
    slice_endpoints,
)

ServiceKey = tuple[str, str]
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Snapshot:
    """A consistent view for one sync; `changed` is None for a full sync.

    It holds the tracker's per-service records (shallow copies: the tracker replaces a
    service's list or dict on change, never edits it), so taking one is cheap at 10k
    services; `ports` and `endpoints`, flat over all services, are built on first use.
    """

    def __init__(self, service_ports: dict[ServiceKey, list[ServicePort]],
                 service_endpoints: dict[ServiceKey, dict[ServicePortName, tuple[Endpoint, ...]]],
                 changed: set[ServiceKey] | None = None, trigger_times: list[float] | None = None, *,
                 port_count: int | None = None, endpoint_count: int | None = None,
                 udp_services: frozenset[ServiceKey] | None = None) -> None:
        self.service_ports = service_ports
        self.service_endpoints = service_endpoints
        self.changed = changed
        # endpoints.kubernetes.io/last-change-trigger-time of the slice changes in this sync (epoch seconds)
        self.trigger_times = trigger_times if trigger_times is not None else []
        self._ports: dict[ServicePortName, ServicePort] | None = None
        self._endpoints: dict[ServicePortName, tuple[Endpoint, ...]] | None = None
        self.port_count = port_count if port_count is not None else len(self.ports)
        self.endpoint_count = endpoint_count if endpoint_count is not None else \
            sum(len(v) for v in self.endpoints.values())
        self.udp_services = udp_services if udp_services is not None else \
            frozenset(k for k, plist in service_ports.items() if any(p.protocol == "udp" for p in plist))

    @property
    def ports(self) -> dict[ServicePortName, ServicePort]:
        if self._ports is None:
            self._ports = {sp.name: sp for plist in self.service_ports.values() for sp in plist}
        return self._ports

    @property
    def endpoints(self) -> dict[ServicePortName, tuple[Endpoint, ...]]:
        if self._endpoints is None:
            self._endpoints = {spn: eps for by_port in self.service_endpoints.values()
                               for spn, eps in by_port.items()}
        return self._endpoints

    def endpoints_of(self, name: ServicePortName) -> tuple[Endpoint, ...]:
        if self._endpoints is not None:
            return self._endpoints.get(name, ())
        return self.service_endpoints.get(name.service, {}).get(name, ())

    def ports_of(self, key: ServiceKey) -> list[ServicePort]:
        """The ports of one service (a cheap look-up, without building `ports`)."""
        return self.service_ports.get(key, [])


class ChangeTracker:
    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self._ports: dict[ServiceKey, list[ServicePort]] = {}
        self._slices: dict[ServiceKey, dict[str, dict[ServicePortName, list[Endpoint]]]] = {}
        self._slice_owner: dict[tuple[str, str], ServiceKey] = {}
        self._merged: dict[ServiceKey, dict[ServicePortName, tuple[Endpoint, ...]]] = {}
        self._changed: set[ServiceKey] = set()
        self._trigger_times: list[float] = []
        self._port_count = 0  # service ports and endpoints, kept as counts so that a sync needn't count
        self._endpoint_count = 0
        self._udp: set[ServiceKey] = set()  # services with a UDP port (conntrack cleanup looks at those)

    # -- services -------------------------------------------------------------------

    def update_service(self, service: Obj) -> bool:
        md = service["metadata"]
        key = (common(md.get("namespace") or "default"), own(md["name"]))  # kept: see model.own
        ports = service_ports(service)
        old = self._ports.get(key, [])
        if old == ports:
            return False
        self._set_ports(key, old, ports)
        return True

    def _set_ports(self, key: ServiceKey, old: list[ServicePort], ports: list[ServicePort]) -> None:
        self._port_count += len(ports) - len(old)
        if ports:
            self._ports[key] = ports
        else:
            self._ports.pop(key, None)
        if any(p.protocol == "udp" for p in ports):
            self._udp.add(key)
        else:
            self._udp.discard(key)
        self._changed.add(key)

    def delete_service(self, service: Obj) -> bool:
        md = service["metadata"]
        key = (md.get("namespace") or "default", md["name"])
        old = self._ports.get(key)
        if old is None:
            return False
        self._set_ports(key, old, [])
        return True

    # -- endpoint slices --------------------------------------------------------------

    def update_slice(self, endpoint_slice: Obj) -> bool:
        md = endpoint_slice["metadata"]
        namespace = common(md.get("namespace") or "default")
        slice_name = own(md["name"])  # kept: see model.own
        slice_key = (namespace, slice_name)
        service_name = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
        changed = False
        owner = self._slice_owner.get(slice_key)
        if owner is not None and owner != (namespace, service_name):
            changed = self._drop_slice(slice_key)  # relabelled to another service
        if not service_name:
            return changed
        key = (namespace, own(service_name))
        eps = slice_endpoints(endpoint_slice, self.node_name)
        slices = self._slices.setdefault(key, {})
        if owner == key and _full(slices.get(slice_name, {})) == _full(eps):
            return changed
        slices[slice_name] = eps
        self._slice_owner[slice_key] = key
        if self._remerge(key):
            trigger = _parse_time((md.get("annotations") or {}).get(TRIGGER_TIME_ANNOTATION))
            if trigger is not None:
                self._trigger_times.append(trigger)
            return True
        return changed

    def delete_slice(self, endpoint_slice: Obj) -> bool:
        md = endpoint_slice["metadata"]
        return self._drop_slice((md.get("namespace") or "default", md["name"]))

    def _drop_slice(self, slice_key: tuple[str, str]) -> bool:
        key = self._slice_owner.pop(slice_key, None)
        if key is None:
            return False
        slices = self._slices.get(key, {})
        slices.pop(slice_key[1], None)
        if not slices:
            self._slices.pop(key, None)
        return self._remerge(key)

    def _remerge(self, key: ServiceKey) -> bool:
        merged: dict[ServicePortName, dict[tuple[str, int], Endpoint]] = {}
        for eps_by_port in self._slices.get(key, {}).values():
            for spn, eps in eps_by_port.items():
                bucket = merged.setdefault(spn, {})
                for ep in eps:
                    bucket.setdefault((ep.ip, ep.port), ep)
        result = {spn: tuple(sorted(b.values(), key=_endpoint_order)) for spn, b in merged.items() if b}
        old = self._merged.get(key, {})
        if _full(old) == _full(result):
            return False
        self._endpoint_count += sum(len(v) for v in result.values()) - sum(len(v) for v in old.values())
        if result:
            self._merged[key] = result
        else:
            self._merged.pop(key, None)
        self._changed.add(key)
        return True

    # -- syncs ------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        return bool(self._changed)

    def snapshot(self, full: bool = False) -> Snapshot:
        """Everything known now; resets the changed set (the caller must sync it)."""
        changed = None if full else set(self._changed)
        self._changed.clear()
        triggers, self._trigger_times = self._trigger_times, []
        return Snapshot(dict(self._ports), dict(self._merged), changed, triggers, port_count=self._port_count,
                        endpoint_count=self._endpoint_count, udp_services=frozenset(self._udp))

    def mark_all_changed(self) -> None:
        self._changed.update(self._ports)
        self._changed.update(self._merged)


def _endpoint_order(ep: Endpoint) -> tuple[int, int]:
    return (int.from_bytes(bytes(int(o) for o in ep.ip.split(".")), "big"), ep.port)


def _full(eps: Mapping[ServicePortName, Sequence[Endpoint]]) -> dict[ServicePortName, list[tuple[object, ...]]]:
    """Endpoints with every field, for change detection (Endpoint equality is ip:port only)."""
    return {spn: [(e.ip, e.port, e.node_name, e.ready, e.serving, e.terminating, e.is_local) for e in v]
            for spn, v in eps.items()}
