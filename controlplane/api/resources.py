"""The resource types pyk8s serves: one table every component reads.

Discovery, routing, storage keys, the client's URL building and kubectl's
short names all come from this table, so a resource is added in one place.
Names, scopes, short names and categories are the upstream ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "binding", "eviction", "log", "exec", "portforward"
    verbs: tuple[str, ...] = ALL_VERBS
    singular: str = field(default="")

    @property
    def stored(self) -> bool:
        """False for the review kinds: a POST is answered and nothing is kept, so nothing can be listed."""
        return "list" in self.verbs

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        """The `apiVersion` field of objects of this type."""
        return self.group_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `pods`: the name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def storage_key(self, namespace: str | None, name: str) -> str:
        """`/registry/<resource>/<namespace>/<name>` (cluster-scoped: no namespace segment)."""
        if self.namespaced:
            return f"{self.storage_prefix(namespace)}{name}"
        return f"/registry/{self.storage_resource}/{name}"

    def storage_prefix(self, namespace: str | None = None) -> str:
        """Prefix that lists every object of this type (in one namespace if given)."""
        if self.namespaced and namespace:
            return f"/registry/{self.storage_resource}/{namespace}/"
        return f"/registry/{self.storage_resource}/"

    @property
    def storage_resource(self) -> str:
        return f"{self.group}/{self.plural}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path of a collection, an object or a subresource."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool, **kw: object) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, **kw)  # type: ignore[arg-type]


RESOURCES: tuple[ResourceType, ...] = (
    # core/v1
    _r("", "v1", "Namespace", "namespaces", False, short_names=("ns",), subresources=("status", "finalize")),
    _r("", "v1", "Node", "nodes", False, short_names=("no",), subresources=("status", "proxy")),
    _r("", "v1", "Pod", "pods", True, short_names=("po",), categories=("all",),
       subresources=("status", "binding", "eviction", "log", "exec", "portforward", "attach", "ephemeralcontainers")),
    _r("", "v1", "Service", "services", True, short_names=("svc",), categories=("all",),
       subresources=("status", "proxy")),
    _r("", "v1", "Endpoints", "endpoints", True, short_names=("ep",), singular="endpoints"),
    _r("", "v1", "ConfigMap", "configmaps", True, short_names=("cm",)),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, short_names=("sa",), subresources=("token",)),
    _r("", "v1", "Event", "events", True, short_names=("ev",)),
    _r("", "v1", "ReplicationController", "replicationcontrollers", True, short_names=("rc",),
       categories=("all",), subresources=("status", "scale")),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", True, short_names=("deploy",), categories=("all",),
       subresources=("status", "scale")),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, short_names=("rs",), categories=("all",),
       subresources=("status", "scale")),
    _r("apps", "v1", "DaemonSet", "daemonsets", True, short_names=("ds",), categories=("all",),
       subresources=("status",)),
    _r("apps", "v1", "StatefulSet", "statefulsets", True, short_names=("sts",), categories=("all",),
       subresources=("status", "scale")),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", True, categories=("all",), subresources=("status",)),
    _r("batch", "v1", "CronJob", "cronjobs", True, short_names=("cj",), categories=("all",),
       subresources=("status",)),
    # discovery.k8s.io/v1
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "Lease", "leases", True),
    # authentication.k8s.io/v1 and authorization.k8s.io/v1: reviews, answered and never stored
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=("create",)),
    _r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
       verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
       verbs=("create",)),
    _r("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True,
       verbs=("create",)),
)

_BY_GVR: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_GVK: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_GVR.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    group, _, version = api_version.rpartition("/")
    return _BY_GVK.get((group, version, kind))


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


# Well-known handles, so callers write resources.PODS instead of a lookup.
NAMESPACES = _BY_GVR[("", "v1", "namespaces")]
NODES = _BY_GVR[("", "v1", "nodes")]
PODS = _BY_GVR[("", "v1", "pods")]
SERVICES = _BY_GVR[("", "v1", "services")]
ENDPOINTS = _BY_GVR[("", "v1", "endpoints")]
CONFIGMAPS = _BY_GVR[("", "v1", "configmaps")]
SECRETS = _BY_GVR[("", "v1", "secrets")]
SERVICEACCOUNTS = _BY_GVR[("", "v1", "serviceaccounts")]
EVENTS = _BY_GVR[("", "v1", "events")]
REPLICATIONCONTROLLERS = _BY_GVR[("", "v1", "replicationcontrollers")]
DEPLOYMENTS = _BY_GVR[("apps", "v1", "deployments")]
REPLICASETS = _BY_GVR[("apps", "v1", "replicasets")]
DAEMONSETS = _BY_GVR[("apps", "v1", "daemonsets")]
STATEFULSETS = _BY_GVR[("apps", "v1", "statefulsets")]
CONTROLLERREVISIONS = _BY_GVR[("apps", "v1", "controllerrevisions")]
JOBS = _BY_GVR[("batch", "v1", "jobs")]
CRONJOBS = _BY_GVR[("batch", "v1", "cronjobs")]
ENDPOINTSLICES = _BY_GVR[("discovery.k8s.io", "v1", "endpointslices")]
LEASES = _BY_GVR[("coordination.k8s.io", "v1", "leases")]
