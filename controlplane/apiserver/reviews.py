"""The review APIs: TokenReview, SelfSubjectReview and the access and rules reviews.

They are how tools ask the API server questions: `kubectl auth whoami`
(SelfSubjectReview), `kubectl auth can-i` (SelfSubjectAccessReview, and
SelfSubjectRulesReview for `--list`), webhooks and proxies checking a token
(TokenReview) or another user's rights (SubjectAccessReview). A review is
validated as upstream validates it, answered, and never stored.

pyk8s has no RBAC yet: its authorizer allows every authenticated request, like
kube-apiserver's `--authorization-mode=AlwaysAllow`, and the access reviews say
so truthfully (allowed, no reason; the rules review lists `*`).
"""

from __future__ import annotations

from typing import Any

from controlplane.api import errors
from controlplane.api.errors import FieldCause
from controlplane.api.resources import ResourceType
from controlplane.apiserver.authn import API_AUDIENCES, Authenticator, UserInfo

Obj = dict[str, Any]
# What AlwaysAllow's rule resolver answers: everything, complete.
ALL_RESOURCE_RULES = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
ALL_NON_RESOURCE_RULES = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


def _invalid_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _spec_causes(spec: Obj, *, self_review: bool) -> list[FieldCause]:
    """Upstream's ValidateSubjectAccessReviewSpec / ValidateSelfSubjectAccessReviewSpec."""
    causes = []
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        causes.append(FieldCause("spec.nonResourceAttributes", "Invalid value: \"object\": cannot be specified in "
                                 "combination with resourceAttributes"))
    if resource is None and non_resource is None:
        causes.append(FieldCause("spec.resourceAttributes", "Invalid value: \"null\": exactly one of "
                                 "nonResourceAttributes or resourceAttributes must be specified"))
    if not self_review and not spec.get("user") and not spec.get("groups"):
        causes.append(FieldCause("spec.user", f"Invalid value: {_invalid_value(spec.get('user') or '')}: at least "
                                 "one of user or group must be specified"))
    return causes


def _metadata_causes(body: Obj, *, keep_namespace: bool) -> list[FieldCause]:
    metadata = {k: v for k, v in (body.get("metadata") or {}).items()
                if v not in (None, "", {}, []) and k != "managedFields" and not (keep_namespace and k == "namespace")}
    if not metadata:
        return []
    return [FieldCause("metadata", "Invalid value: \"object\": must be empty" +
                       (" except for namespace" if keep_namespace else ""))]


def _check(rt: ResourceType, causes: list[FieldCause]) -> None:
    if causes:
        raise errors.invalid(rt.kind, "", causes, rt.group)


class Reviews:
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def answer(self, rt: ResourceType, namespace: str | None, body: Obj, user: UserInfo) -> Obj:
        """The posted review with its status filled in. Raises StatusError for a review upstream refuses."""
        body["apiVersion"], body["kind"] = rt.api_version, rt.kind
        body.setdefault("metadata", {})["creationTimestamp"] = None
        spec = body.get("spec") or {}
        if rt.kind == "TokenReview":
            body["status"] = await self._token_review(spec)
        elif rt.kind == "SelfSubjectReview":
            body["status"] = {"userInfo": user.to_dict()}
        elif rt.kind == "SelfSubjectRulesReview":
            if not spec.get("namespace"):
                raise errors.bad_request("no namespace on request")
            body["status"] = {"resourceRules": ALL_RESOURCE_RULES, "nonResourceRules": ALL_NON_RESOURCE_RULES,
                              "incomplete": False}
        else:
            self._validate_access_review(rt, namespace, body, spec)
            body["status"] = {"allowed": True}  # AlwaysAllow: every authenticated request, no reason given
        return body

    async def _token_review(self, spec: Obj) -> Obj:
        requested = tuple(spec.get("audiences") or ()) or API_AUDIENCES
        found = await self.authenticator.authenticate(str(spec.get("token") or ""), requested)
        if found is None:
            return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
        status: Obj = {"authenticated": True, "user": found.user.to_dict()}
        if spec.get("audiences"):
            status["audiences"] = list(found.audiences)
        return status

    @staticmethod
    def _validate_access_review(rt: ResourceType, namespace: str | None, body: Obj, spec: Obj) -> None:
        if rt.kind == "SelfSubjectAccessReview":
            _check(rt, _spec_causes(spec, self_review=True) + _metadata_causes(body, keep_namespace=False))
            return
        if rt.kind == "SubjectAccessReview":
            _check(rt, _spec_causes(spec, self_review=False) + _metadata_causes(body, keep_namespace=False))
            return
        # LocalSubjectAccessReview: the namespace of the URL, in metadata and in the attributes
        metadata = body["metadata"]
        metadata.setdefault("namespace", namespace)
        causes = _spec_causes(spec, self_review=False) + _metadata_causes(body, keep_namespace=True)
        attributes = spec.get("resourceAttributes")
        if attributes is not None and (attributes.get("namespace") or "") != (metadata.get("namespace") or ""):
            causes.append(FieldCause("spec.resourceAttributes.namespace",
                                     f"Invalid value: {_invalid_value(attributes.get('namespace') or '')}: must "
                                     "match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            causes.append(FieldCause("spec.nonResourceAttributes",
                                     "Invalid value: \"object\": disallowed on this kind of request"))
        _check(rt, causes)
        if not namespace:
            raise errors.bad_request("namespace is required on this type: ")
        if namespace != metadata.get("namespace"):
            raise errors.bad_request(f"spec.resourceAttributes.namespace must match namespace: {namespace}")
