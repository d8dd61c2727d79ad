"""Schemas of the review kinds: authentication.k8s.io/v1 and authorization.k8s.io/v1.

TokenReview, SelfSubjectReview and the access and rules reviews are posted,
answered and never stored (`controlplane/apiserver/reviews.py`); they still need
a schema for the type checks, strict field validation and `kubectl explain`.
Field names and shapes are upstream's; the descriptions are the project's.
"""

from __future__ import annotations

from controlplane.api.schema.build import (
    AUTHENTICATION,
    AUTHORIZATION,
    META,
    Schema,
    boolean,
    map_of,
    obj,
    ref,
    refs,
    string,
    strings,
)

_API_VERSION = string("Schema version of this object, such as authorization.k8s.io/v1.")
_KIND = string("Kind of this object, such as SelfSubjectAccessReview; CamelCase.")
_METADATA = ref(META + "ObjectMeta", "Empty for reviews (namespace only, for a local access review).",
                default={})
_EXTRA = map_of(strings(), "Further attributes of the user, as the authenticator gave them.")


def _authentication() -> dict[str, Schema]:
    a = AUTHENTICATION
    return {
        a + "TokenReview": obj("Asks whether a bearer token is valid, and whom it names.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(a + "TokenReviewSpec", "The token to check.", default={}),
            "status": ref(a + "TokenReviewStatus", "Filled in by the server.", default={}),
        }, ["spec"], gvk=("authentication.k8s.io", "v1", "TokenReview")),
        a + "TokenReviewSpec": obj("A token and the audiences it should be valid for.", {
            "token": string("The bearer token."),
            "audiences": strings("Audiences the token must be for; empty: the API server's own."),
        }),
        a + "TokenReviewStatus": obj("The verdict on a token.", {
            "authenticated": boolean("Whether the token is valid."),
            "user": ref(a + "UserInfo", "The user the token names.", default={}),
            "audiences": strings("The requested audiences the token is valid for."),
            "error": string("Why the token could not be checked."),
        }),
        a + "UserInfo": obj("Who a user is, as authentication found.", {
            "username": string("Name of the user."),
            "uid": string("Unique, stable identifier of the user."),
            "groups": strings("Groups the user belongs to."),
            "extra": _EXTRA,
        }),
        a + "SelfSubjectReview": obj("Asks who the caller is.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "status": ref(a + "SelfSubjectReviewStatus", "Filled in by the server.", default={}),
        }, gvk=("authentication.k8s.io", "v1", "SelfSubjectReview")),
        a + "SelfSubjectReviewStatus": obj("The caller's identity.", {
            "userInfo": ref(a + "UserInfo", "The caller, as authentication found.", default={}),
        }),
    }


def _authorization() -> dict[str, Schema]:
    z = AUTHORIZATION
    status = ref(z + "SubjectAccessReviewStatus", "Filled in by the server.", default={})
    return {
        z + "SubjectAccessReview": obj("Asks whether a user or group may perform an action.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(z + "SubjectAccessReviewSpec", "The action and who asks.", default={}),
            "status": status,
        }, ["spec"], gvk=("authorization.k8s.io", "v1", "SubjectAccessReview")),
        z + "LocalSubjectAccessReview": obj("A subject access review limited to one namespace.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(z + "SubjectAccessReviewSpec", "The action and who asks.", default={}),
            "status": status,
        }, ["spec"], gvk=("authorization.k8s.io", "v1", "LocalSubjectAccessReview")),
        z + "SelfSubjectAccessReview": obj("Asks whether the caller may perform an action.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(z + "SelfSubjectAccessReviewSpec", "The action.", default={}),
            "status": status,
        }, ["spec"], gvk=("authorization.k8s.io", "v1", "SelfSubjectAccessReview")),
        z + "SubjectAccessReviewSpec": obj("An action and the user it is checked for; exactly one kind of "
                                           "attributes.", {
            "resourceAttributes": ref(z + "ResourceAttributes", "An action on a resource."),
            "nonResourceAttributes": ref(z + "NonResourceAttributes", "An action on a non-resource path."),
            "user": string("The user to check."),
            "groups": strings("The groups to check."),
            "extra": _EXTRA,
            "uid": string("The user's uid."),
        }),
        z + "SelfSubjectAccessReviewSpec": obj("An action; exactly one kind of attributes.", {
            "resourceAttributes": ref(z + "ResourceAttributes", "An action on a resource."),
            "nonResourceAttributes": ref(z + "NonResourceAttributes", "An action on a non-resource path."),
        }),
        z + "ResourceAttributes": obj("An action on a resource, as an authorizer sees a request.", {
            "namespace": string("Namespace of the action; empty: all namespaces or a cluster-scoped resource."),
            "verb": string("get, list, watch, create, update, patch, delete, deletecollection, or *."),
            "group": string("API group; * for all."),
            "version": string("API version; * for all."),
            "resource": string("Resource (plural); * for all."),
            "subresource": string("Subresource; empty for none."),
            "name": string("Name of the object; empty for all."),
        }),
        z + "NonResourceAttributes": obj("An action on a path that is not a resource.", {
            "path": string("The URL path."),
            "verb": string("The HTTP verb, lower case."),
        }),
        z + "SubjectAccessReviewStatus": obj("The verdict on an action.", {
            "allowed": boolean("Whether the action is allowed.", default=False),
            "denied": boolean("Whether the action is explicitly denied."),
            "reason": string("Why, in words."),
            "evaluationError": string("What went wrong while deciding, if anything."),
        }, ["allowed"]),
        z + "SelfSubjectRulesReview": obj("Asks what the caller may do in a namespace.", {
            "apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA,
            "spec": ref(z + "SelfSubjectRulesReviewSpec", "The namespace.", default={}),
            "status": ref(z + "SubjectRulesReviewStatus", "Filled in by the server.", default={}),
        }, ["spec"], gvk=("authorization.k8s.io", "v1", "SelfSubjectRulesReview")),
        z + "SelfSubjectRulesReviewSpec": obj("Where the rules are asked for.", {
            "namespace": string("The namespace to list rules in."),
        }),
        z + "SubjectRulesReviewStatus": obj("The caller's rules.", {
            "resourceRules": refs(z + "ResourceRule", "Allowed actions on resources.", list_type="atomic"),
            "nonResourceRules": refs(z + "NonResourceRule", "Allowed actions on other paths.",
                                     list_type="atomic"),
            "incomplete": boolean("True when the list may leave allowed actions out.", default=False),
            "evaluationError": string("What went wrong while listing, if anything."),
        }, ["resourceRules", "nonResourceRules", "incomplete"]),
        z + "ResourceRule": obj("Verbs allowed on resources; * matches all.", {
            "verbs": strings("Allowed verbs."),
            "apiGroups": strings("API groups."),
            "resources": strings("Resources."),
            "resourceNames": strings("Object names; empty for all."),
        }, ["verbs"]),
        z + "NonResourceRule": obj("Verbs allowed on non-resource paths; * matches all.", {
            "verbs": strings("Allowed verbs."),
            "nonResourceURLs": strings("Paths; a trailing * matches a prefix."),
        }, ["verbs"]),
    }


def definitions() -> dict[str, Schema]:
    return {**_authentication(), **_authorization()}
