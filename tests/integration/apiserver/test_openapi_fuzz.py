"""Schema-driven fuzzing: schemathesis generates requests from the server's own `/openapi/v3` documents.

A real API server (its own thread and event loop, since schemathesis calls it synchronously) serves
`/openapi/v3`; the core/v1 and apps/v1 documents it lists are loaded as they are served, and every
operation on ConfigMaps, Secrets, Pods, Services and Deployments (create, list and list in all
namespaces, deletecollection, get, replace, patch, delete, and the status and scale subresources) gets
generated requests, valid and invalid by the schema, in a namespace made for them and in any other.

What must hold for every answer: no 5xx (`not_a_server_error`), an answer within REQUEST_TIMEOUT, and
every non-2xx body a Kubernetes `Status` (kind Status, apiVersion v1, status Failure, code equal to the
HTTP code, reason and message set). After each operation's run /readyz answers and a sentinel object in
`default` is unchanged.

Budget: SCHEMATHESIS_EXAMPLES examples per operation (default 10: the module takes about 40 s on a
2-core machine). A longer run by hand: `SCHEMATHESIS_EXAMPLES=200 SCHEMATHESIS_RANDOM=1 .venv/bin/python
-m pytest tests/integration/apiserver/test_openapi_fuzz.py -x` (tests/FUZZING.md). CI runs derandomized,
so a failure there repeats; SCHEMATHESIS_RANDOM=1 draws new examples every run.

One adaptation of the documents, in the test and not in the server: upstream's request bodies (and so
the server's) are `*/*`, which schemathesis cannot serialize, so they are offered as `application/json`
and `application/yaml`, the two text encodings the server decodes for `*/*`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response

from controlplane.apiserver import openapi
from controlplane.apiserver.server import APIServer, APIServerConfig

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
RANDOM = os.environ.get("SCHEMATHESIS_RANDOM") == "1"
REQUEST_TIMEOUT = 15.0  # seconds: an answer slower than this is a hang
NAMESPACE = "fuzz"
PLURALS = ("configmaps", "secrets", "pods", "services", "deployments", "namespaces", "nodes", "endpoints",
           "serviceaccounts", "events", "replicationcontrollers", "replicasets", "daemonsets", "statefulsets",
           "controllerrevisions")
# Left out: a deletecollection of every namespace would end the namespaces the run itself needs.
SKIPPED = {("DELETE", "/api/v1/namespaces")}
DOCUMENTS = (("", "v1"), ("apps", "v1"))
SENTINEL = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sentinel"}, "data": {"keep": "me"}}
SENTINEL_PATH = "/api/v1/namespaces/default/configmaps/sentinel"
_POD_SPEC = {"containers": [{"name": "c", "image": "busybox"}]}
_WORKLOAD = {"selector": {"matchLabels": {"app": "f"}}, "template": {"metadata": {"labels": {"app": "f"}},
                                                                     "spec": _POD_SPEC}}
SEEDS: dict[str, dict[str, Any]] = {  # one object of each kind for the item operations to find
    "configmaps": {"data": {"a": "b"}},
    "secrets": {"stringData": {"a": "b"}},
    "pods": {"spec": _POD_SPEC},
    "services": {"spec": {"ports": [{"port": 80}]}},
    "deployments": {"spec": _WORKLOAD},
    "namespaces": {},
    "nodes": {},
    "endpoints": {},
    "serviceaccounts": {},
    "events": {"involvedObject": {"kind": "Pod", "name": "p", "namespace": NAMESPACE}, "reason": "Seen",
               "message": "m", "type": "Normal"},
    "replicationcontrollers": {"spec": {"selector": {"app": "f"}, "template": _WORKLOAD["template"]}},
    "replicasets": {"spec": _WORKLOAD},
    "daemonsets": {"spec": _WORKLOAD},
    "statefulsets": {"spec": {**_WORKLOAD, "serviceName": "s"}},
    "controllerrevisions": {"revision": 1},
}


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every fuzzed operation, from the documents the server serves."""
    found = []
    for group, version in DOCUMENTS:
        for path, item in orjson.loads(openapi.document(group, version))["paths"].items():
            segments = path.split("/")
            if not any(p in segments for p in PLURALS):
                continue
            found += [(method.upper(), path) for method in item
                      if method != "parameters" and (method.upper(), path) not in SKIPPED]
    return found


class Running:
    """An API server on its own event loop in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = APIServer(APIServerConfig(data_dir=data_dir, secure_port=0))
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzzed-apiserver", daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=60)
        config = yaml.safe_load(self.server.admin_kubeconfig.read_text())
        self.headers = {"Authorization": f"Bearer {config['users'][0]['user']['token']}"}
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies, and the CA below rather than REQUESTS_CA_BUNDLE's
        self.ca = str(data_dir / "pki" / "ca.crt")
        self.session.verify = self.ca
        self.session.headers.update(self.headers)

    @property
    def url(self) -> str:
        return self.server.url

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.session.request(method, self.url + path, json=body, timeout=REQUEST_TIMEOUT)

    def stop(self) -> None:
        self.session.close()
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    api = Running(tmp_path_factory.mktemp("fuzz") / "server")
    try:
        assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}).status_code == 201
        assert api.request("POST", "/api/v1/namespaces/default/configmaps", SENTINEL).status_code == 201
        yield api
    finally:
        api.stop()


def _json_bodies(doc: dict[str, Any]) -> dict[str, Any]:
    """`*/*` request bodies offered as JSON and YAML (see the module's docstring)."""
    for item in doc["paths"].values():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {}) if method != "parameters" else {}
            if "*/*" in content:
                schema = content.pop("*/*")
                content["application/json"] = schema
                content["application/yaml"] = schema
    return doc


@pytest.fixture(scope="module")
def schema(running: Running) -> schemathesis.BaseSchema:
    index = running.session.get(running.url + "/openapi/v3", timeout=REQUEST_TIMEOUT).json()
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for group, version in DOCUMENTS:
        key = f"apis/{group}/{version}" if group else f"api/{version}"
        doc = running.session.get(running.url + index["paths"][key]["serverRelativeURL"],
                                  timeout=REQUEST_TIMEOUT).json()
        paths.update(_json_bodies(doc)["paths"])
        components.update(doc["components"]["schemas"])
    return schemathesis.openapi.from_dict({"openapi": "3.0.0", "info": doc["info"], "paths": paths,
                                           "components": {"schemas": components}})


def _is_status(body: Any, code: int) -> str | None:
    """Why `body` is not the Status of a failure with this HTTP code, or None."""
    if not isinstance(body, dict):
        return f"not an object: {body!r:.200}"
    expected = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
    wrong = {k: body.get(k) for k, v in expected.items() if body.get(k) != v}
    if wrong:
        return f"{wrong} (expected {expected})"
    for field in ("reason", "message"):
        if not isinstance(body.get(field), str) or not body[field]:
            return f"no {field}"
    return None


@schemathesis.check
def kubernetes_status(ctx: schemathesis.CheckContext, response: Response, case: Case) -> bool | None:
    """Every non-2xx answer is a Kubernetes Status with the HTTP code."""
    if 200 <= response.status_code < 300:
        return None
    try:
        body = orjson.loads(response.content or b"")
    except orjson.JSONDecodeError:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.content[:200]!r}") from None
    problem = _is_status(body, response.status_code)
    if problem is not None:
        raise AssertionError(f"{response.status_code} body is not a Status: {problem}")
    return None


def _bounded(case: Case) -> None:
    """A watch is a stream that lasts until timeoutSeconds: bound it, so it is an answer, not a hang."""
    query = case.query if isinstance(case.query, dict) else None
    if query is not None and str(query.get("watch", "")).lower() in ("true", "1"):
        query["timeoutSeconds"] = 1


def assert_healthy(running: Running) -> None:
    ready = running.session.get(running.url + "/readyz", timeout=REQUEST_TIMEOUT)
    assert ready.status_code == 200, ready.text
    sentinel = running.request("GET", SENTINEL_PATH)
    assert sentinel.status_code == 200, sentinel.text
    assert sentinel.json()["data"] == {"keep": "me"}


@pytest.mark.parametrize(("method", "path"), _operations(), ids=[f"{m} {p}" for m, p in _operations()])
def test_generated_requests(running: Running, schema: schemathesis.BaseSchema, method: str, path: str) -> None:
    operation = schema[path][method]
    plural = [segment for segment in path.split("/") if segment in PLURALS][-1]
    seed = f"seed-{plural}"
    item = path.split("/{name}")[0] + "/{name}"
    if "{name}" in path and running.request("GET", item.format(namespace=NAMESPACE, name=seed)).status_code \
            == 404:  # made now, or again: an earlier operation's run may have deleted it
        created = running.request("POST", path.split("/{name}")[0].format(namespace=NAMESPACE),
                                  {**SEEDS[plural], "metadata": {"name": seed}})
        assert created.status_code == 201, created.text
    fixed = {k: v for k, v in (("namespace", NAMESPACE), ("name", seed)) if "{" + k + "}" in path}
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed),
                      operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed),
                      operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(case=cases, query=st.sampled_from(("generated", "none")))
    def fuzz(case: Case, query: str) -> None:
        if query == "none" and isinstance(case.query, dict):
            case.query.clear()  # past the query's checks, to what the body and the path reach
        _bounded(case)
        response = case.call(base_url=running.url, session=running.session, timeout=REQUEST_TIMEOUT,
                             verify=running.ca)
        answers[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error, kubernetes_status])

    answers: Counter[int] = Counter()
    fuzz()
    print(f"{method} {path}: {sum(answers.values())} requests, answers {dict(sorted(answers.items()))}")
    assert_healthy(running)


def test_the_status_check_can_fail() -> None:
    """The check refuses what is not a failure Status of the answer's code."""
    good = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound",
            "message": "x"}
    assert _is_status(good, 404) is None
    assert _is_status(good, 400) is not None
    assert _is_status({**good, "kind": "ConfigMap"}, 404) is not None
    assert _is_status({**good, "message": ""}, 404) is not None
    assert _is_status({k: v for k, v in good.items() if k != "reason"}, 404) is not None
    assert _is_status(["not", "an", "object"], 404) is not None
