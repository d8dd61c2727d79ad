"""IPVS mode against the kernel, in namespaces each test creates.

What this kernel has is exercised for real: kube-ipvs0's addresses (added, removed
when their service goes, nothing else touched) and the nft companion table (loads,
is replaced in one transaction, rejects what it must with real packets). The
dummy link type and ip_vs are checked first; tests needing what is absent are
skipped with the reason. Without ip_vs, `--proxy-mode ipvs` must refuse clearly.
The traffic tests of IPVS mode are the shared ones in test_proxy_traffic.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest
from proxy_lab import REPO, Lab, endpoint_slice, lab, missing_tools, service

from netproxy.ipvs import ipvs_available

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_ipvs_mode_refuses_without_the_kernel_module(tmp_path) -> None:
    available, why = ipvs_available()
    if available:
        print(f"SKIPPED: this kernel has IPVS ({why}); the refusal cannot be observed here")
        pytest.skip(f"this kernel has IPVS ({why})")
    print(f"IPVS absent here: {why}")
    kubeconfig = tmp_path / "kubeconfig"
    # A well-formed kubeconfig of an API server that is not there: the mode is refused before any connection.
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                          "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                          "users: [{name: u, user: {token: t}}]\n"
                          "contexts: [{name: c, context: {cluster: k, user: u}}]\n")
    result = subprocess.run([sys.executable, "-m", "pyk8s.cli", "proxy", "--kubeconfig", str(kubeconfig),
                             "--hostname-override", "n1", "--proxy-mode", "ipvs", "--healthz-bind-address", "",
                             "--metrics-bind-address", ""], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result
    assert "ipvs is not available" in result.stdout + result.stderr
    assert "ip_vs" in result.stdout + result.stderr


# -- one bare namespace ----------------------------------------------------------------------------


def _run(*argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, input=stdin)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


class Netns:
    def __init__(self) -> None:
        self.name = f"pxi-{uuid.uuid4().hex[:6]}"

    def run(self, *argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return _run("nsenter", f"--net=/var/run/netns/{self.name}", "--", *argv, check=check, stdin=stdin)

    def python(self, code: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `code` with the repository's packages in this namespace (as the proxy runs in a node's)."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run(["nsenter", f"--net=/var/run/netns/{self.name}", "--", sys.executable, "-c",
                               textwrap.dedent(code), *args], capture_output=True, text=True, timeout=60,
                              env=env, cwd=REPO, check=check)

    def addresses(self, dev: str) -> set[str]:
        out = self.run("ip", "-4", "-o", "addr", "show", "dev", dev).stdout
        return {line.split()[3] for line in out.splitlines()}


@pytest.fixture
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0:
        print("SKIPPED: needs root (network namespaces)")
        pytest.skip("needs root (network namespaces)")
    ns = Netns()
    _run("ip", "netns", "add", ns.name)
    try:
        ns.run("ip", "link", "set", "lo", "up")
        yield ns
    finally:
        _run("ip", "netns", "del", ns.name, check=False)


def dummy_unsupported(ns: Netns) -> str | None:
    """Why the dummy link type cannot be used here, or None (checked inside `ns`)."""
    probe = ns.run("ip", "link", "add", "pxprobe0", "type", "dummy", check=False)
    if probe.returncode != 0:
        return f"this kernel cannot create dummy links ({probe.stderr.strip()})"
    ns.run("ip", "link", "del", "pxprobe0")
    return None


# The address half of IpvsBackend.sync, with the backend's own functions in the order it calls them:
# kube-ipvs0 ensured, its addresses and the node's read, the wanted state built from API objects, the
# diff against what the device holds, additions first and removals (with odd prefixes) last.
ADDRESS_SYNC = """
    import asyncio, json, sys
    from pyroute2 import AsyncIPRoute
    from netproxy.ipvs import change_addresses, ensure_device, node_ips, read_addresses
    from netproxy.ipvs_render import IpvsOptions, IpvsState, build, diff
    from netproxy.tracker import ChangeTracker

    async def main():
        state = json.loads(sys.argv[1])
        tracker = ChangeTracker("node1")
        for obj in state["services"]:
            tracker.update_service(obj)
        async with AsyncIPRoute() as ipr:
            index = await ensure_device(ipr)
            addrs = await read_addresses(ipr)
            nodes, _ = node_ips(addrs, ())
            desired = build(tracker.snapshot(full=True), IpvsOptions(node_name="node1", node_ips=nodes))
            plan = diff(IpvsState({ip for ip, plen in addrs.device if plen == 32}, {}), desired.ipvs, nodes)
            odd = sorted(a for a in addrs.device if a[1] != 32)
            await change_addresses(ipr, index, plan.add_addresses, [])
            await change_addresses(ipr, index, [], [(ip, 32) for ip in plan.del_addresses] + odd)
        print(json.dumps({"nodes": list(nodes), "added": plan.add_addresses, "removed": plan.del_addresses}))

    asyncio.run(main())
"""


def address_sync(ns: Netns, services: list[dict]) -> dict:
    result = ns.python(ADDRESS_SYNC, json.dumps({"services": services}))
    reply: dict = json.loads(result.stdout)
    return reply


def test_kube_ipvs0_is_created_as_a_dummy_device_left_down(netns: Netns) -> None:
    why = dummy_unsupported(netns)
    if why:
        print(f"SKIPPED: {why}")
        pytest.skip(why)
    address_sync(netns, [service("web", "10.96.0.10")])
    link = netns.run("ip", "-d", "-o", "link", "show", "kube-ipvs0").stdout
    assert " dummy " in link and "state DOWN" in link, link
    assert netns.addresses("kube-ipvs0") == {"10.96.0.10/32"}
    # the addresses of a DOWN device are local all the same: the kernel delivers them to IPVS
    assert netns.run("ip", "route", "get", "10.96.0.10").stdout.startswith("local 10.96.0.10")


def test_kube_ipvs0_addresses_are_reconciled_and_nothing_else_is_touched(netns: Netns) -> None:
    if dummy_unsupported(netns):
        # this kernel has no dummy links: the device is made beforehand as another kind, which the
        # proxy uses as it finds it (as upstream does with an existing kube-ipvs0)
        netns.run("ip", "link", "add", "kube-ipvs0", "type", "bridge")
    else:
        netns.run("ip", "link", "add", "kube-ipvs0", "type", "dummy")
    netns.run("ip", "link", "add", "other0", "type", "bridge")
    netns.run("ip", "addr", "add", "192.168.5.1/24", "dev", "other0")
    netns.run("ip", "addr", "add", "10.96.0.77/32", "dev", "other0")  # a service-like address, not ours
    netns.run("ip", "addr", "add", "10.96.0.99/32", "dev", "kube-ipvs0")  # left by an earlier run
    netns.run("ip", "addr", "add", "10.96.5.1/24", "dev", "kube-ipvs0")  # not a /32: not the proxy's form
    services = [service("a", "10.96.0.10"), service("b", "10.96.0.11", externalIPs=["192.168.88.10"]),
                service("lb", "10.96.0.12", type="LoadBalancer")]
    services[2]["status"] = {"loadBalancer": {"ingress": [{"ip": "192.168.88.20"}]}}
    first = address_sync(netns, services)
    assert netns.addresses("kube-ipvs0") == {"10.96.0.10/32", "10.96.0.11/32", "10.96.0.12/32",
                                             "192.168.88.10/32", "192.168.88.20/32"}
    assert first["removed"] == ["10.96.0.99"]
    # NodePorts go on the node's own addresses: not kube-ipvs0's, not loopback
    assert first["nodes"] == ["10.96.0.77", "192.168.5.1"]
    for ip in ("10.96.0.10", "192.168.88.20"):
        assert netns.run("ip", "route", "get", ip).stdout.startswith(f"local {ip}")
    # a service goes: its addresses go; the second run of the same state changes nothing
    second = address_sync(netns, services[:1] + services[2:])
    assert second["removed"] == ["10.96.0.11", "192.168.88.10"] and second["added"] == []
    assert netns.addresses("kube-ipvs0") == {"10.96.0.10/32", "10.96.0.12/32", "192.168.88.20/32"}
    assert address_sync(netns, services[:1] + services[2:]) == {**second, "removed": []}
    assert netns.addresses("other0") == {"192.168.5.1/24", "10.96.0.77/32"}
    assert "state DOWN" in netns.run("ip", "-o", "link", "show", "kube-ipvs0").stdout


# -- the nft companion table -----------------------------------------------------------------------

COMPANION = """
    import asyncio, json, sys
    from netproxy.ipvs import load_companion
    from netproxy.ipvs_render import IpvsOptions, build, companion_script
    from netproxy.tracker import ChangeTracker

    state = json.loads(sys.argv[1])
    tracker = ChangeTracker("node1")
    for obj in state["services"]:
        tracker.update_service(obj)
    for obj in state["endpointSlices"]:
        tracker.update_slice(obj)
    opts = IpvsOptions(node_name="node1", cluster_cidr="10.244.0.0/16", node_ips=("192.168.5.1",))
    script = companion_script(build(tracker.snapshot(full=True), opts).companion, opts) + state.get("extra", "")
    asyncio.run(load_companion(script))
"""


def load_companion(ns: Netns, services: list[dict], slices: list[dict], extra: str = "",
                   check: bool = True) -> subprocess.CompletedProcess[str]:
    state = {"services": services, "endpointSlices": slices, "extra": extra}
    return ns.python(COMPANION, json.dumps(state), check=check)


def table(ns: Netns) -> str:
    return ns.run("nft", "list", "table", "ip", "kube-proxy-ipvs").stdout


def nft_missing() -> None:
    reason = missing_tools("nftables", None)
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)


def test_companion_table_loads_and_is_replaced_in_one_transaction(netns: Netns) -> None:
    nft_missing()
    netns.run("nft", "add table ip foreign; add chain ip foreign c; add rule ip foreign c udp dport 9999 accept")
    web, dns = service("web", "10.96.0.10", node_port=30080), service("dns", "10.96.0.53", port=53, protocol="UDP")
    slices = [endpoint_slice("web", {"b1": "node1", "b2": "node2"})]
    load_companion(netns, [web, dns], slices)
    first = table(netns)
    assert "10.96.0.53 . udp . 53 : goto reject-chain" in first  # no endpoints: rejected
    assert "10.244.1.12 . 10.244.1.12" in first and "tcp . 30080" in first
    # endpoint b2 and the dns service go: the whole table is replaced, no element of theirs is left
    load_companion(netns, [web], [endpoint_slice("web", {"b1": "node1"})])
    second = table(netns)
    assert "10.96.0.53" not in second and "10.244.1.12" not in second and "10.244.1.11 . 10.244.1.11" in second
    # a transaction that fails half-way changes nothing: the previous table stays whole
    failed = load_companion(netns, [web, dns], slices, extra="add rule ip kube-proxy-ipvs no-such-chain accept\n",
                            check=False)
    assert failed.returncode != 0
    assert table(netns) == second
    ruleset = netns.run("nft", "list", "ruleset").stdout
    assert ruleset.count("table ip kube-proxy-ipvs") == 1 and "udp dport 9999 accept" in ruleset
    # cleanup removes the table only
    netns.python("import asyncio; from netproxy.ipvs import delete_companion; asyncio.run(delete_companion())")
    ruleset = netns.run("nft", "list", "ruleset").stdout
    assert "kube-proxy-ipvs" not in ruleset and "table ip foreign" in ruleset


PROBE = """
    import json, socket, sys, threading
    listeners = []
    for port in (80, 9999):  # something local listens on every address of these ports
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(8); listeners.append(s)
    def accept(s):
        while True:
            c, _ = s.accept(); c.close()
    for s in listeners:
        threading.Thread(target=accept, args=(s,), daemon=True).start()
    out = {}
    for host, port in json.loads(sys.argv[1]):
        try:
            socket.create_connection((host, port), timeout=2).close(); out[f"{host}:{port}"] = "connected"
        except ConnectionRefusedError:
            out[f"{host}:{port}"] = "refused"
        except OSError as e:
            out[f"{host}:{port}"] = str(e)
    print(json.dumps(out))
"""


def test_companion_table_rejects_services_without_endpoints_and_unserved_ports(netns: Netns) -> None:
    """Real packets, no IPVS needed: what the table must refuse before IPVS would see it."""
    nft_missing()
    kind = "bridge" if dummy_unsupported(netns) else "dummy"
    netns.run("ip", "link", "add", "kube-ipvs0", "type", kind)
    empty, web = service("empty", "10.96.0.14"), service("web", "10.96.0.10")
    address_sync(netns, [empty, web])
    load_companion(netns, [empty, web], [endpoint_slice("web", {"b1": "node1"})])
    targets = [("10.96.0.14", 80), ("10.96.0.10", 9999), ("127.0.0.1", 9999)]
    result = json.loads(netns.python(PROBE, json.dumps(targets)).stdout)
    assert result == {"10.96.0.14:80": "refused",  # a service without endpoints: REJECT, not the local listener
                      "10.96.0.10:9999": "refused",  # a port no service has on a kube-ipvs0 address
                      "127.0.0.1:9999": "connected"}  # addresses that are not the proxy's: untouched


# -- with ip_vs only -------------------------------------------------------------------------------


@pytest.fixture
def ipvs_lab() -> Iterator[Lab]:
    reason = missing_tools("ipvs", None) or missing_tools("nftables", None)
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    with lab() as the_lab:
        yield the_lab


def test_virtual_servers_as_upstream_lays_them_out(ipvs_lab: Lab) -> None:
    proxy = ipvs_lab.start_proxy("ipvs", None, "--ipvs-scheduler", "wrr")
    proxy.apply([service("web", "10.96.0.10", node_port=30080),
                 service("sticky", "10.96.0.11", sessionAffinity="ClientIP",
                         sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})],
                [endpoint_slice("web", {"b1": "node1", "b2": "node2"}), endpoint_slice("sticky", {"b1": "node1"})])
    listing = ipvs_lab.in_ns(ipvs_lab.node, "ipvsadm", "-Ln").stdout
    assert "TCP  10.96.0.10:80 wrr" in listing and "TCP  192.168.77.1:30080 wrr" in listing
    assert "TCP  10.96.0.11:80 wrr persistent 60" in listing
    assert "-> 10.244.1.11:8080" in listing and "Masq" in listing
    assert "10.96.0.10/32" in ipvs_lab.in_ns(ipvs_lab.node, "ip", "addr", "show", "dev", "kube-ipvs0").stdout


def test_cleanup_and_mode_switch_remove_only_ipvs_modes_own_state(ipvs_lab: Lab) -> None:
    node = ipvs_lab.node
    proxy = ipvs_lab.start_proxy("ipvs", None)
    proxy.apply([service("web", "10.96.0.50", node_port=30050)], [endpoint_slice("web", {"b1": "node1"})])
    proxy.stop()
    ipvs_lab.in_ns(node, "ipvsadm", "-A", "-t", "192.168.77.1:9999", "-s", "wlc")  # not the proxy's
    argv = [sys.executable, "-m", "pyk8s.cli", "proxy", "--cleanup", "--proxy-mode", "ipvs",
            "--hostname-override", "node1"]
    ipvs_lab.in_ns(node, "env", f"PYTHONPATH={REPO}", *argv)
    listing = ipvs_lab.in_ns(node, "ipvsadm", "-Ln").stdout
    assert "10.96.0.50" not in listing and ":30050" not in listing and "192.168.77.1:9999" in listing
    assert ipvs_lab.in_ns(node, "ip", "link", "show", "kube-ipvs0", check=False).returncode != 0
    assert "kube-proxy-ipvs" not in ipvs_lab.in_ns(node, "nft", "list", "ruleset").stdout
    # ipvs -> nftables: the new mode removes IPVS mode's leftovers when it starts
    proxy = ipvs_lab.start_proxy("ipvs", None)
    proxy.apply([service("web", "10.96.0.50", node_port=30050)], [endpoint_slice("web", {"b1": "node1"})])
    proxy.stop()
    proxy = ipvs_lab.start_proxy("nftables", None)
    proxy.apply([service("web", "10.96.0.50", node_port=30050)], [endpoint_slice("web", {"b1": "node1"})])
    assert "10.96.0.50" not in ipvs_lab.in_ns(node, "ipvsadm", "-Ln").stdout
    assert "kube-proxy-ipvs" not in ipvs_lab.in_ns(node, "nft", "list", "ruleset").stdout
    assert {a.split()[0] for a in ipvs_lab.request("10.96.0.50", 80, count=3)} == {"b1"}
