"""Discovery documents: what kubectl reads before anything else.

Both forms are served from the resource table: the legacy per-group-version
documents (/api, /apis, /api/v1, /apis/<g>/<v>) and the aggregated
`apidiscovery.k8s.io` v2 (and v2beta1) lists that kubectl 1.30+ asks for by
content type.
"""

from __future__ import annotations

from typing import Any

from controlplane.api.resources import RESOURCES, ResourceType, group_versions

KUBE_MINOR = "31"
VERSION_INFO = {
    "major": "1", "minor": KUBE_MINOR, "gitVersion": f"v1.{KUBE_MINOR}.0-pyk8s",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "python3.11", "compiler": "cpython",
    "platform": "linux/amd64",
}

_SUB_VERBS = {
    "status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "binding": ["create"],
    "eviction": ["create"], "log": ["get"], "exec": ["create", "get"], "attach": ["create", "get"],
    "portforward": ["create", "get"], "proxy": ["create", "delete", "get", "patch", "update"],
    "token": ["create"], "finalize": ["update"], "ephemeralcontainers": ["get", "patch", "update"],
}
_SUB_KIND = {"scale": ("autoscaling", "v1", "Scale"), "binding": ("", "v1", "Binding"),
             "eviction": ("policy", "v1", "Eviction"), "token": ("authentication.k8s.io", "v1", "TokenRequest"),
             "log": ("", "v1", "Pod"), "exec": ("", "v1", "PodExecOptions"),
             "attach": ("", "v1", "PodAttachOptions"), "portforward": ("", "v1", "PodPortForwardOptions"),
             "proxy": ("", "v1", "NodeProxyOptions")}


def _in(group: str, version: str) -> list[ResourceType]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def api_group_list() -> dict[str, Any]:
    groups = []
    for group, version in group_versions():
        if not group:
            continue
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    for g in api_group_list()["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    resources = _in(group, version)
    if not resources:
        return None
    entries: list[dict[str, Any]] = []
    for r in resources:
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular_name, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        for sub in r.subresources:
            g, v, kind = _SUB_KIND.get(sub, (r.group, r.version, r.kind))
            sub_entry = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                         "kind": kind, "verbs": _SUB_VERBS.get(sub, ["get"])}
            if g != r.group:
                sub_entry["group"], sub_entry["version"] = g, v
            entries.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": entries}


def aggregated(core: bool, api_version: str) -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (core=True) or /apis."""
    items = []
    for group, version in group_versions():
        if (group == "") != core:
            continue
        resources = []
        for r in _in(group, version):
            entry: dict[str, Any] = {
                "resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular_name,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            subs = []
            for sub in r.subresources:
                g, v, kind = _SUB_KIND.get(sub, (r.group, r.version, r.kind))
                subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind},
                             "verbs": _SUB_VERBS.get(sub, ["get"])})
            if subs:
                entry["subresources"] = subs
            resources.append(entry)
        items.append({"metadata": {"name": group, "creationTimestamp": None},
                      "versions": [{"version": version, "resources": resources, "freshness": "Current"}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}
