"""The proxy's Prometheus metrics, under upstream's names, rendered as text exposition format."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

SYNC_BUCKETS = tuple(0.001 * 2 ** i for i in range(15))  # upstream: ExponentialBuckets(0.001, 2, 15)
# upstream: 0.25, 0.5, then 1..59 s, 60..115 s by 5, 120..300 s by 30
PROGRAMMING_BUCKETS = (0.25, 0.5, *map(float, range(1, 60)), *map(float, range(60, 120, 5)),
                       *map(float, range(120, 301, 30)))


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...] = SYNC_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for bound, n in zip(self.buckets, self.counts, strict=True):
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {n}')
        lines += [f'{self.name}_bucket{{le="+Inf"}} {self.count}', f"{self.name}_sum {self.total}",
                  f"{self.name}_count {self.count}"]
        return lines


class ProxyMetrics:
    def __init__(self) -> None:
        self.sync_duration = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                       "SyncProxyRules latency in seconds")
        self.full_sync_duration = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                                            "SyncProxyRules latency in seconds for full resyncs")
        self.partial_sync_duration = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                               "SyncProxyRules latency in seconds for partial resyncs")
        self.network_programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds", PROGRAMMING_BUCKETS)
        self.endpoint_changes = 0
        self.service_changes = 0
        self.last_sync_timestamp = 0.0
        self.last_queued_timestamp = 0.0
        self.restore_failures = 0
        self.rules: dict[str, int] = {}  # table -> rule count (iptables: filter/nat, nftables: kube-proxy)
        self.no_local_endpoints = {"internal": 0, "external": 0}
        self.services = 0
        self.endpoints = 0

    def observe_sync(self, seconds: float, full: bool) -> None:
        self.sync_duration.observe(seconds)
        (self.full_sync_duration if full else self.partial_sync_duration).observe(seconds)
        self.last_sync_timestamp = time.time()

    def render(self, mode: str) -> str:
        lines: list[str] = []
        for h in (self.sync_duration, self.full_sync_duration, self.partial_sync_duration,
                  self.network_programming):
            lines += h.render()
        for name, value, what in (("endpoint_changes", self.endpoint_changes, "endpoint slice"),
                                  ("service_changes", self.service_changes, "service")):
            metric = f"kubeproxy_sync_proxy_rules_{name}_total"
            lines += [f"# HELP {metric} Cumulative proxy rules {what} changes", f"# TYPE {metric} counter",
                      f"{metric} {value}"]
        lines += ["# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds The last time proxy rules were "
                  "successfully synced", "# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge",
                  f"kubeproxy_sync_proxy_rules_last_timestamp_seconds {self.last_sync_timestamp}",
                  "# HELP kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds The last time a sync of "
                  "proxy rules was queued", "# TYPE kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds "
                  "gauge", f"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds "
                  f"{self.last_queued_timestamp}"]
        failures = ("kubeproxy_sync_proxy_rules_iptables_restore_failures_total" if mode == "iptables"
                    else "kubeproxy_sync_proxy_rules_nftables_sync_failures_total")
        lines += [f"# HELP {failures} Cumulative proxy rules restore failures", f"# TYPE {failures} counter",
                  f"{failures} {self.restore_failures}"]
        if mode == "iptables":
            lines += ["# HELP kubeproxy_sync_proxy_rules_iptables_total Total number of iptables rules owned "
                      "by kube-proxy", "# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge"]
            lines += [f'kubeproxy_sync_proxy_rules_iptables_total{{table="{t}"}} {n}'
                      for t, n in sorted(self.rules.items())]
        elif mode == "ipvs":
            lines += ["# HELP kubeproxy_sync_proxy_rules_ipvs_total Virtual servers, real servers, kube-ipvs0 "
                      "addresses and companion nftables elements owned by kube-proxy",
                      "# TYPE kubeproxy_sync_proxy_rules_ipvs_total gauge"]
            lines += [f'kubeproxy_sync_proxy_rules_ipvs_total{{kind="{t}"}} {n}'
                      for t, n in sorted(self.rules.items())]
        else:
            lines += ["# HELP kubeproxy_sync_proxy_rules_nftables_total Total number of nftables rules and "
                      "elements owned by kube-proxy", "# TYPE kubeproxy_sync_proxy_rules_nftables_total gauge"]
            lines += [f'kubeproxy_sync_proxy_rules_nftables_total{{kind="{t}"}} {n}'
                      for t, n in sorted(self.rules.items())]
        lines += ["# HELP kubeproxy_sync_proxy_rules_no_local_endpoints_total Number of services with a Local "
                  "traffic policy and no endpoints", "# TYPE kubeproxy_sync_proxy_rules_no_local_endpoints_total "
                  "gauge"]
        lines += [f'kubeproxy_sync_proxy_rules_no_local_endpoints_total{{traffic_policy="{k}"}} {v}'
                  for k, v in sorted(self.no_local_endpoints.items())]
        lines += ["# HELP kubeproxy_services Service ports known to the proxy", "# TYPE kubeproxy_services gauge",
                  f"kubeproxy_services {self.services}",
                  "# HELP kubeproxy_endpoints Endpoints known to the proxy", "# TYPE kubeproxy_endpoints gauge",
                  f"kubeproxy_endpoints {self.endpoints}"]
        return "\n".join(lines) + "\n"
