"""Hostile values in objects get upstream's answers over HTTP, and nothing of them is stored.

Each case posts (or puts, or patches) a body a careless or malicious client
could send — config keys and volume paths that climb out of their directory,
integers beyond their Go width, objects over their size limits, selectors
upstream refuses — and checks upstream's HTTP code, reason, message and
`details.causes`, then that the object was not stored.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson
import pytest

CM = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"
PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
DAEMONSETS = "/apis/apps/v1/namespaces/default/daemonsets"
CRONJOBS = "/apis/batch/v1/namespaces/default/cronjobs"
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")




async def send(http: aiohttp.ClientSession, method: str, path: str, body: Any,
               ctype: str = "application/json") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with http.request(method, path, data=data, headers={"Content-Type": ctype}) as resp:
        return resp.status, orjson.loads(await resp.read())


async def absent(http: aiohttp.ClientSession, path: str) -> bool:
    async with http.get(path) as resp:
        return resp.status == 404


def causes(payload: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in payload["details"]["causes"]]


GROUPS = {"Deployment": "apps", "DaemonSet": "apps", "CronJob": "batch"}


def assert_invalid(status: int, payload: dict[str, Any], kind: str, name: str, summary: str) -> None:
    """Upstream's 422: `Deployment.apps "x" is invalid: <one cause>` or `[<cause>, <cause>]`."""
    assert status == 422, payload
    assert payload["kind"] == "Status" and payload["reason"] == "Invalid" and payload["code"] == 422
    qualified = f"{kind}.{GROUPS[kind]}" if kind in GROUPS else kind
    assert payload["message"] == f'{qualified} "{name}" is invalid: {summary}'
    assert payload["details"]["name"] == name


# ---------------------------------------------------------------------------- ConfigMap and Secret keys

@pytest.mark.parametrize(("key", "messages"), [
    ("../../../../tmp/x", [CONFIG_KEY_MSG, "must not start with '..'"]),
    ("/etc/y", [CONFIG_KEY_MSG]),
    ("..", ["must not be '..'"]),
    ("..hidden", ["must not start with '..'"]),
    ("k" * 254, ["must be no more than 253 characters"]),
])
async def test_config_map_keys_that_are_not_file_names_are_refused(http: aiohttp.ClientSession, key: str,
                                                                   messages: list[str]) -> None:
    for field in ("data", "binaryData"):
        value = "x" if field == "data" else base64.b64encode(b"x").decode()
        status, payload = await send(http, "POST", CM, {"metadata": {"name": "keys"}, field: {key: value}})
        expected = [("FieldValueInvalid", f"{field}[{key}]", f'Invalid value: "{key}": {m}') for m in messages]
        parts = [f"{f}: {m}" for _, f, m in expected]
        assert_invalid(status, payload, "ConfigMap", "keys", parts[0] if len(parts) == 1 else
                       "[" + ", ".join(parts) + "]")
        assert causes(payload) == expected
        assert await absent(http, f"{CM}/keys")


async def test_a_key_in_both_data_and_binary_data_is_refused(http: aiohttp.ClientSession) -> None:
    body = {"metadata": {"name": "dup"}, "data": {"k": "a"}, "binaryData": {"k": "YQ=="}}
    status, payload = await send(http, "POST", CM, body)
    assert_invalid(status, payload, "ConfigMap", "dup",
                   'data[k]: Invalid value: "k": duplicate of key present in binaryData')


@pytest.mark.parametrize("field", ["data", "stringData"])
async def test_secret_keys_are_checked_in_data_and_string_data(http: aiohttp.ClientSession, field: str) -> None:
    value = base64.b64encode(b"x").decode() if field == "data" else "x"
    status, payload = await send(http, "POST", SECRETS, {"metadata": {"name": "s"}, field: {"/etc/y": value}})
    # stringData is merged into data before upstream validates: the path is data[...] in both cases.
    assert_invalid(status, payload, "Secret", "s", f'data[/etc/y]: Invalid value: "/etc/y": {CONFIG_KEY_MSG}')
    assert await absent(http, f"{SECRETS}/s")


async def test_string_data_is_merged_into_data_and_not_stored(http: aiohttp.ClientSession) -> None:
    body = {"metadata": {"name": "merged"}, "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"a": "hello"}}
    status, created = await send(http, "POST", SECRETS, body)
    assert status == 201, created
    assert created["data"] == {"a": base64.b64encode(b"hello").decode(), "b": "eQ=="}
    assert "stringData" not in created
    created["stringData"] = {"c": "more"}
    status, updated = await send(http, "PUT", f"{SECRETS}/merged", created)
    assert status == 200, updated
    assert updated["data"]["c"] == base64.b64encode(b"more").decode() and "stringData" not in updated


async def test_a_valid_config_map_is_still_stored(http: aiohttp.ClientSession) -> None:
    body = {"metadata": {"name": "fine", "annotations": {"example.com/Note": "x"}},
            "data": {"key.name": "a", "KEY_NAME": "b", "key-name": "c", ".dotfile": "d"}}
    status, payload = await send(http, "POST", CM, body)
    assert status == 201, payload


# ---------------------------------------------------------------------------- sizes

async def test_a_config_map_over_1_mib_is_refused(http: aiohttp.ClientSession) -> None:
    body = {"metadata": {"name": "big"}, "data": {"a": "x" * (512 * 1024), "b": "y" * (512 * 1024 + 1)}}
    status, payload = await send(http, "POST", CM, body)
    assert_invalid(status, payload, "ConfigMap", "big", "[]: Too long: must have at most 1048576 bytes")
    assert causes(payload) == [("FieldValueTooLong", "[]", "Too long: must have at most 1048576 bytes")]
    assert await absent(http, f"{CM}/big")
    exact = {"metadata": {"name": "big"}, "data": {"a": "x" * (1024 * 1024)}}
    assert (await send(http, "POST", CM, exact))[0] == 201


async def test_a_secret_over_1_mib_is_refused(http: aiohttp.ClientSession) -> None:
    data = {"a": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()}
    status, payload = await send(http, "POST", SECRETS, {"metadata": {"name": "big"}, "data": data})
    assert_invalid(status, payload, "Secret", "big", "data: Too long: must have at most 1048576 bytes")
    assert causes(payload) == [("FieldValueTooLong", "data", "Too long: must have at most 1048576 bytes")]


async def test_annotations_over_256_kib_are_refused(http: aiohttp.ClientSession) -> None:
    body = {"metadata": {"name": "ann", "annotations": {"a": "x" * (256 * 1024)}}}
    status, payload = await send(http, "POST", CM, body)
    assert_invalid(status, payload, "ConfigMap", "ann",
                   "metadata.annotations: Too long: must have at most 262144 bytes")
    assert causes(payload) == [("FieldValueTooLong", "metadata.annotations",
                                "Too long: must have at most 262144 bytes")]
    assert await absent(http, f"{CM}/ann")


@pytest.mark.parametrize(("key", "message"), [
    ("a/b/c", "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
              "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
              "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
              "and '/' (e.g. 'example.com/MyName')"),
    ("/x", "prefix part must be non-empty"),
    ("-x", "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
           "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
           "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
])
async def test_annotation_keys_must_be_qualified_names(http: aiohttp.ClientSession, key: str, message: str) -> None:
    status, payload = await send(http, "POST", CM, {"metadata": {"name": "ann", "annotations": {key: "v"}}})
    assert_invalid(status, payload, "ConfigMap", "ann", f'metadata.annotations: Invalid value: "{key}": {message}')


async def test_label_values_over_63_characters_are_refused(http: aiohttp.ClientSession) -> None:
    value = "v" * 64
    status, payload = await send(http, "POST", CM, {"metadata": {"name": "lbl", "labels": {"k": value}}})
    assert_invalid(status, payload, "ConfigMap", "lbl",
                   f'metadata.labels: Invalid value: "{value}": must be no more than 63 characters')


# ---------------------------------------------------------------------------- paths in pods and templates

def _pod_spec(volume: dict[str, Any], mount: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox:1"}
    if mount is not None:
        container["volumeMounts"] = [{"name": "v", "mountPath": "/data", **mount}]
    return {"containers": [container], "volumes": [{"name": "v", **volume}]}


def _workload(kind: str, name: str, spec: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """A body of `kind` with `spec` as its pod spec, the collection to post it to, and its spec path prefix."""
    template = {"metadata": {"labels": {"app": name}}, "spec": spec}
    if kind == "Pod":
        return PODS, {"metadata": {"name": name}, "spec": spec}, "spec"
    if kind == "CronJob":
        template["spec"] = {**spec, "restartPolicy": "Never"}
        return CRONJOBS, {"metadata": {"name": name}, "spec": {"schedule": "* * * * *", "jobTemplate": {
            "spec": {"template": template}}}}, "spec.jobTemplate.spec.template.spec"
    path = DEPLOYMENTS if kind == "Deployment" else DAEMONSETS
    return path, {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": name}},
                                                        "template": template}}, "spec.template.spec"


PATH_CASES = [
    ({"configMap": {"name": "cm", "items": [{"key": "k", "path": "../../../etc/x"}]}}, None,
     "volumes[0].configMap.items[0].path", "../../../etc/x", "must not contain '..'"),
    ({"secret": {"secretName": "s", "items": [{"key": "k", "path": "/etc/shadow"}]}}, None,
     "volumes[0].secret.items[0].path", "/etc/shadow", "must be a relative path"),
    ({"configMap": {"name": "cm", "items": [{"key": "k", "path": "..data"}]}}, None,
     "volumes[0].configMap.items[0].path", "..data", "must not start with '..'"),
    ({"downwardAPI": {"items": [{"path": "../x", "fieldRef": {"fieldPath": "metadata.name"}}]}}, None,
     "volumes[0].downwardAPI.path", "../x", "must not contain '..'"),
    ({"projected": {"sources": [{"configMap": {"name": "cm", "items": [{"key": "k", "path": "a/../../b"}]}}]}},
     None, "volumes[0].projected.sources[0].configMap.items[0].path", "a/../../b", "must not contain '..'"),
    ({"emptyDir": {}}, {"subPath": "../../../etc"},
     "containers[0].volumeMounts.subPath", "../../../etc", "must not contain '..'"),
    ({"emptyDir": {}}, {"subPathExpr": "/$(POD_NAME)"},
     "containers[0].volumeMounts.subPathExpr", "/$(POD_NAME)", "must be a relative path"),
    ({"hostPath": {"path": "/var/../etc"}}, None, "volumes[0].hostPath.path", "/var/../etc", "must not contain '..'"),
]


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "DaemonSet", "CronJob"])
@pytest.mark.parametrize(("volume", "mount", "field", "value", "message"), PATH_CASES)
async def test_paths_that_climb_out_are_refused_in_pods_and_templates(
        http: aiohttp.ClientSession, kind: str, volume: dict[str, Any], mount: dict[str, Any] | None, field: str,
        value: str, message: str) -> None:
    collection, body, prefix = _workload(kind, "paths", _pod_spec(volume, mount))
    status, payload = await send(http, "POST", collection, body)
    assert_invalid(status, payload, kind, "paths", f'{prefix}.{field}: Invalid value: "{value}": {message}')
    assert causes(payload) == [("FieldValueInvalid", f"{prefix}.{field}", f'Invalid value: "{value}": {message}')]
    assert await absent(http, f"{collection}/paths")


async def test_host_path_type_must_be_one_of_upstreams(http: aiohttp.ClientSession) -> None:
    collection, body, prefix = _workload("DaemonSet", "hp", _pod_spec({"hostPath": {"path": "/x", "type": "Weird"}}))
    status, payload = await send(http, "POST", collection, body)
    assert_invalid(status, payload, "DaemonSet", "hp", f'{prefix}.volumes[0].hostPath.type: Unsupported value: '
                   '"Weird": supported values: "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", '
                   '"File", "FileOrCreate", "Socket"')
    assert causes(payload)[0][0] == "FieldValueNotSupported"


async def test_bidirectional_propagation_needs_a_privileged_container(http: aiohttp.ClientSession) -> None:
    spec = _pod_spec({"hostPath": {"path": "/mnt"}}, {"mountPropagation": "Bidirectional"})
    status, payload = await send(http, "POST", PODS, {"metadata": {"name": "prop"}, "spec": spec})
    assert_invalid(status, payload, "Pod", "prop", "spec.containers[0].volumeMounts.mountPropagation: Forbidden: "
                   "Bidirectional mount propagation is available only to privileged containers")
    spec["containers"][0]["securityContext"] = {"privileged": True}
    assert (await send(http, "POST", PODS, {"metadata": {"name": "prop"}, "spec": spec}))[0] == 201


async def test_a_path_check_also_guards_updates_and_patches(http: aiohttp.ClientSession) -> None:
    spec = _pod_spec({"emptyDir": {}}, {"subPath": "ok"})
    collection, body, _ = _workload("Deployment", "upd", spec)
    status, created = await send(http, "POST", collection, body)
    assert status == 201, created
    bad = orjson.loads(orjson.dumps(created))
    bad["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = "../../x"
    status, payload = await send(http, "PUT", f"{collection}/upd", bad)
    assert status == 422 and "volumeMounts.subPath" in payload["message"]
    patch = {"spec": {"template": {"spec": {"volumes": [{"name": "v", "configMap": {"name": "c", "items": [
        {"key": "k", "path": "../../x"}]}}]}}}}
    status, payload = await send(http, "PATCH", f"{collection}/upd", patch, "application/merge-patch+json")
    assert status == 422 and "spec.template.spec.volumes[0].configMap.items[0].path" in payload["message"]


# ---------------------------------------------------------------------------- integer widths

@pytest.mark.parametrize(("literal", "shown"), [
    (b"2147483648", "2147483648"),
    (b"9223372036854775808", "9223372036854775808"),
    (b"18446744073709551616", "18446744073709551616"),
    (b"2.0", "2.0"),
    (b"-2147483649", "-2147483649"),
])
async def test_replicas_beyond_int32_are_a_bad_request(http: aiohttp.ClientSession, literal: bytes,
                                                       shown: str) -> None:
    body = (b'{"metadata": {"name": "wide"}, "spec": {"replicas": ' + literal + b', "selector": {"matchLabels": '
            b'{"app": "w"}}, "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": '
            b'[{"name": "c", "image": "busybox:1"}]}}}}')
    status, payload = await send(http, "POST", DEPLOYMENTS, body)
    assert status == 400, payload
    assert payload["reason"] == "BadRequest"
    assert payload["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: json: cannot '
                                  f"unmarshal number {shown} into Go struct field DeploymentSpec.spec.replicas of "
                                  "type int32")
    assert await absent(http, f"{DEPLOYMENTS}/wide")


async def test_int64_fields_and_int_or_string_have_their_widths(http: aiohttp.ClientSession) -> None:
    spec = {"containers": [{"name": "c", "image": "busybox:1"}], "terminationGracePeriodSeconds": 2 ** 63}
    status, payload = await send(http, "POST", PODS, {"metadata": {"name": "w"}, "spec": spec})
    assert status == 400
    assert payload["message"].endswith("json: cannot unmarshal number 9223372036854775808 into Go struct field "
                                       "PodSpec.spec.terminationGracePeriodSeconds of type int64")
    spec = {"containers": [{"name": "c", "image": "busybox:1", "livenessProbe": {"tcpSocket": {"port": 2 ** 31}}}]}
    status, payload = await send(http, "POST", PODS, {"metadata": {"name": "w"}, "spec": spec})
    assert status == 400
    assert payload["message"] == ('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number '
                                  "2147483648 into Go value of type int32")


async def test_a_patch_to_a_too_wide_replicas_is_a_bad_request(http: aiohttp.ClientSession) -> None:
    collection, body, _ = _workload("Deployment", "scale", _pod_spec({"emptyDir": {}}))
    assert (await send(http, "POST", collection, body))[0] == 201
    status, payload = await send(http, "PATCH", f"{collection}/scale", b'{"spec": {"replicas": 4294967296}}',
                                 "application/merge-patch+json")
    assert status == 400
    assert "cannot unmarshal number 4294967296 into Go struct field DeploymentSpec.spec.replicas" in \
        payload["message"]


# ---------------------------------------------------------------------------- selectors

@pytest.mark.parametrize(("selector", "message"), [
    ("x in ()", "unable to parse requirement: values: Invalid value: []string{}: for 'in', 'notin' operators, "
                "values set can't be empty"),
    ("x=" + "a" * 64, 'unable to parse requirement: values[0][x]: Invalid value: "' + "a" * 64 +
     '": must be no more than 63 characters'),
    ("k" * 64 + "=v", 'unable to parse requirement: key: Invalid value: "' + "k" * 64 +
     '": name part must be no more than 63 characters'),
])
async def test_bad_label_selectors_are_a_bad_request(http: aiohttp.ClientSession, selector: str,
                                                     message: str) -> None:
    async with http.get(PODS, params={"labelSelector": selector}) as resp:
        payload = orjson.loads(await resp.read())
        assert resp.status == 400
    assert payload["reason"] == "BadRequest" and payload["message"] == message


async def test_selectors_inside_objects_are_validated(http: aiohttp.ClientSession) -> None:
    collection, body, _ = _workload("Deployment", "sel", _pod_spec({"emptyDir": {}}))
    body["spec"]["selector"] = {"matchLabels": {"app": "sel"},
                                "matchExpressions": [{"key": "tier", "operator": "In"},
                                                     {"key": "x", "operator": "Exists", "values": ["a"]},
                                                     {"key": "y", "operator": "Near", "values": ["a"]}]}
    status, payload = await send(http, "POST", collection, body)
    assert status == 422
    assert causes(payload) == [
        ("FieldValueRequired", "spec.selector.matchExpressions[0].values",
         "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        ("FieldValueForbidden", "spec.selector.matchExpressions[1].values",
         "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
        ("FieldValueInvalid", "spec.selector.matchExpressions[2].operator",
         'Invalid value: "Near": not a valid selector operator'),
    ]
    assert await absent(http, f"{collection}/sel")


# ---------------------------------------------------------------------------- values the node writes down

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"hostname": "web\n10.0.0.1 evil"}, "spec.hostname", f'Invalid value: "web\\n10.0.0.1 evil": {LABEL_MSG}'),
    ({"subdomain": "a b"}, "spec.subdomain", f'Invalid value: "a b": {LABEL_MSG}'),
    ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds",
     "Invalid value: 0: must be between 1 and 2147483647, inclusive"),
    ({"containers": [{"name": "c", "image": "busybox:1 "}]}, "spec.containers[0].image",
     'Invalid value: "busybox:1 ": must not have leading or trailing whitespace'),
    ({"containers": [{"name": "c", "image": "busybox:1", "resources": {"requests": {"memory": "-1Gi"}}}]},
     "spec.containers[0].resources.requests[memory]", 'Invalid value: "-1Gi": must be greater than or equal to 0'),
    ({"containers": [{"name": "c", "image": "busybox:1", "env": [{"name": "A=B"}]}]}, "spec.containers[0].env[0].name",
     "Invalid value: \"A=B\": a valid environment variable name must consist of alphabetic characters, digits, "
     "'_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
     "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"),
    ({"volumes": [{"name": "Bad_Name", "emptyDir": {}}]}, "spec.volumes[0].name",
     f'Invalid value: "Bad_Name": {LABEL_MSG}'),
])
async def test_pod_values_the_node_uses_are_checked(http: aiohttp.ClientSession, change: dict[str, Any], field: str,
                                                    message: str) -> None:
    spec = {"containers": [{"name": "c", "image": "busybox:1"}], **change}
    status, payload = await send(http, "POST", PODS, {"metadata": {"name": "vals"}, "spec": spec})
    assert_invalid(status, payload, "Pod", "vals", f"{field}: {message}")
    assert causes(payload) == [("FieldValueInvalid", field, message)]
    assert await absent(http, f"{PODS}/vals")


@pytest.mark.parametrize(("ip", "message"), [
    ("not-an-ip", "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ("0.0.0.0", "may not be unspecified (0.0.0.0)"),
    ("127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("169.254.169.254", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
])
async def test_service_external_ips_may_not_capture_node_traffic(http: aiohttp.ClientSession, ip: str,
                                                                 message: str) -> None:
    body = {"metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}], "externalIPs": [ip]}}
    status, payload = await send(http, "POST", "/api/v1/namespaces/default/services", body)
    assert_invalid(status, payload, "Service", "ext", f'spec.externalIPs[0]: Invalid value: "{ip}": {message}')
    assert await absent(http, "/api/v1/namespaces/default/services/ext")


@pytest.mark.parametrize(("quantity", "error"), [
    ("abc", "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("1Gb", "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("1mi", "unable to parse quantity's suffix"),
])
async def test_malformed_quantities_are_a_bad_request(http: aiohttp.ClientSession, quantity: str, error: str) -> None:
    spec = {"containers": [{"name": "c", "image": "busybox:1", "resources": {"limits": {"memory": quantity}}}]}
    status, payload = await send(http, "POST", PODS, {"metadata": {"name": "q"}, "spec": spec})
    assert status == 400 and payload["reason"] == "BadRequest"
    assert payload["message"] == f'Pod in version "v1" cannot be handled as a Pod: {error}'
    assert await absent(http, f"{PODS}/q")
