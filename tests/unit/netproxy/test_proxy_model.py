"""The shared model: service ports from Services, endpoints from EndpointSlices, the change tracker."""

from __future__ import annotations

from proxy_objects import endpoint_slice, service

from netproxy.model import Endpoint, ServicePortName, categorize, service_ports
from netproxy.tracker import ChangeTracker

TCP80 = [{"name": "http", "port": 80, "protocol": "TCP"}]


def test_headless_and_external_name_services_are_not_proxied() -> None:
    assert service_ports(service("a", "h", "None", TCP80)) == []
    assert service_ports(service("a", "x", "", TCP80, type="ExternalName")) == []


def test_service_port_fields_and_defaults() -> None:
    svc = service("a", "s", "10.96.0.5", [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053},
                                          {"port": 80}], type="LoadBalancer", sessionAffinity="ClientIP",
                  externalTrafficPolicy="Local", healthCheckNodePort=32000, externalIPs=["1.2.3.4", "fe80::1"])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}}
    dns, web = service_ports(svc)
    assert str(dns.name) == "a/s:dns" and dns.protocol == "udp" and dns.node_port == 30053
    assert dns.sticky_seconds == 10800 and dns.session_affinity
    assert dns.external_ips == ("1.2.3.4",) and dns.load_balancer_ips == ("5.6.7.8",)
    assert dns.external_policy_local and dns.health_check_node_port == 32000
    assert str(web.name) == "a/s" and web.name.protocol == "TCP" and web.node_port == 0


def test_node_port_is_ignored_for_cluster_ip_services() -> None:
    (sp,) = service_ports(service("a", "s", "10.96.0.5", [{"port": 80, "nodePort": 30001}]))
    assert sp.node_port == 0 and not sp.externally_accessible


def test_terminating_endpoints_are_only_a_fallback() -> None:
    (sp,) = service_ports(service("a", "s", "10.96.0.5", TCP80))
    ready = Endpoint("10.0.0.1", 80, "n1", ready=True)
    draining = Endpoint("10.0.0.2", 80, "n1", ready=False, serving=True, terminating=True)
    gone = Endpoint("10.0.0.3", 80, "n1", ready=False, serving=False, terminating=True)
    assert categorize([ready, draining, gone], sp).cluster == (ready,)
    assert categorize([draining, gone], sp).cluster == (draining,)
    assert not categorize([gone], sp).has_any


def test_local_policies_pick_local_endpoints() -> None:
    (sp,) = service_ports(service("a", "s", "10.96.0.5", TCP80, internalTrafficPolicy="Local"))
    local = Endpoint("10.0.0.1", 80, "me", is_local=True)
    remote = Endpoint("10.0.0.2", 80, "other")
    cat = categorize([local, remote], sp)
    assert cat.all_reachable == (local,) and cat.cluster == () and cat.has_any
    cat = categorize([remote], sp)
    assert cat.local == () and cat.has_any  # endpoints exist, just not here: DROP, not REJECT


def test_tracker_merges_slices_and_reports_changed_services() -> None:
    tracker = ChangeTracker("n1")
    assert tracker.update_service(service("a", "s", "10.96.0.5", TCP80))
    ports = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert tracker.update_slice(endpoint_slice("a", "s", ports, [("10.0.0.2", "n2")], name="s-1"))
    assert tracker.update_slice(endpoint_slice("a", "s", ports, [("10.0.0.1", "n1"), ("10.0.0.2", "n2")],
                                               name="s-2"))
    snap = tracker.snapshot()
    spn = ServicePortName("a", "s", "http", "TCP")
    assert snap.changed == {("a", "s")}
    assert [str(e) for e in snap.endpoints[spn]] == ["10.0.0.1:8080", "10.0.0.2:8080"]
    assert snap.endpoints[spn][0].is_local and not snap.endpoints[spn][1].is_local
    # the same object again is no change; a readiness change is one
    assert not tracker.update_slice(endpoint_slice("a", "s", ports, [("10.0.0.2", "n2")], name="s-1"))
    assert not tracker.pending
    assert tracker.update_slice(endpoint_slice("a", "s", ports, [("10.0.0.2", "n2")], name="s-1", ready=False))
    assert tracker.snapshot().changed == {("a", "s")}
    assert tracker.delete_slice(endpoint_slice("a", "s", ports, [], name="s-2"))
    assert tracker.delete_service(service("a", "s", "10.96.0.5", TCP80))
    snap = tracker.snapshot()
    assert snap.changed == {("a", "s")} and snap.ports == {}
    assert [e.ready for e in snap.endpoints[spn]] == [False]


def test_full_snapshot_has_no_changed_set() -> None:
    tracker = ChangeTracker("n1")
    tracker.update_service(service("a", "s", "10.96.0.5", TCP80))
    assert tracker.snapshot(full=True).changed is None
    assert not tracker.pending


def test_slice_trigger_times_reach_the_snapshot_once() -> None:
    tracker = ChangeTracker("n1")
    ports = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    s = endpoint_slice("a", "s", ports, [("10.0.0.1", "n1")])
    s["metadata"]["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": "2026-01-02T03:04:05Z"}
    assert tracker.update_slice(s)
    assert tracker.snapshot().trigger_times == [1767323045.0]
    assert tracker.snapshot().trigger_times == []


def test_kept_strings_are_copies_of_the_decoded_objects_strings() -> None:
    from netproxy.memory import release_free_memory
    from netproxy.model import own

    decoded = "".join(["10.1.", "2.3"])  # a string as a JSON decoder makes it
    kept = own(decoded)
    assert kept == decoded and kept is not decoded  # the decoded object's memory can go
    assert release_free_memory() in (True, False)
