"""Write the project's protobuf wire schema from upstream's, keeping only the facts.

Run by hand when the served kinds change (not at build or install time):

    .venv/bin/python controlplane/api/proto/derive.py API_CHECKOUT APIMACHINERY_CHECKOUT VERSION
    bash controlplane/api/proto/regenerate.sh

It reads the `generated.proto` files of a kubernetes/api and a
kubernetes/apimachinery checkout, keeps the messages reachable from the kinds
pyk8s decodes (`ROOTS`), and writes them with their names, field names, numbers
and types only — no comments, no options — one file per upstream package, into
this folder. The result is the wire format, which is what has to match.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
# upstream file (relative to its checkout) -> the file name written here
SOURCES = {
    ("apimachinery", "pkg/runtime/generated.proto"): "runtime.proto",
    ("apimachinery", "pkg/api/resource/generated.proto"): "resource.proto",
    ("apimachinery", "pkg/util/intstr/generated.proto"): "intstr.proto",
    ("apimachinery", "pkg/apis/meta/v1/generated.proto"): "meta_v1.proto",
    ("api", "core/v1/generated.proto"): "core_v1.proto",
    ("api", "apps/v1/generated.proto"): "apps_v1.proto",
    ("api", "batch/v1/generated.proto"): "batch_v1.proto",
    ("api", "discovery/v1/generated.proto"): "discovery_v1.proto",
    ("api", "coordination/v1/generated.proto"): "coordination_v1.proto",
    ("api", "authentication/v1/generated.proto"): "authentication_v1.proto",
    ("api", "authorization/v1/generated.proto"): "authorization_v1.proto",
    ("api", "policy/v1/generated.proto"): "policy_v1.proto",
    ("api", "autoscaling/v1/generated.proto"): "autoscaling_v1.proto",
}
ROOTS = [
    "k8s.io.apimachinery.pkg.runtime.Unknown",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    *(f"k8s.io.api.core.v1.{kind}" for kind in (
        "Pod", "Namespace", "ConfigMap", "Secret", "Service", "ServiceAccount", "Endpoints", "Event", "Node",
        "ReplicationController", "Binding")),
    *(f"k8s.io.api.apps.v1.{kind}" for kind in (
        "Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "ControllerRevision")),
    "k8s.io.api.batch.v1.Job", "k8s.io.api.batch.v1.CronJob",
    "k8s.io.api.discovery.v1.EndpointSlice",
    "k8s.io.api.coordination.v1.Lease",
    "k8s.io.api.authentication.v1.TokenRequest", "k8s.io.api.authentication.v1.TokenReview",
    "k8s.io.api.authentication.v1.SelfSubjectReview",
    *(f"k8s.io.api.authorization.v1.{kind}" for kind in (
        "SubjectAccessReview", "SelfSubjectAccessReview", "LocalSubjectAccessReview", "SelfSubjectRulesReview")),
    "k8s.io.api.policy.v1.Eviction",
    "k8s.io.api.autoscaling.v1.Scale",
]
# upstream Go types (relative to the same checkouts), read for which fields are pointers
GO_TYPES = {
    ("apimachinery", "pkg/apis/meta/v1/types.go"): "k8s.io.apimachinery.pkg.apis.meta.v1",
    **{("api", f"{group}/v1/types.go"): f"k8s.io.api.{group}.v1" for group in (
        "core", "apps", "batch", "discovery", "coordination", "authentication", "authorization", "policy",
        "autoscaling")},
}
GO_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
GO_POINTER_FIELD = re.compile(r"^\s+\w+\s+\*([\w.]+)\s+`json:\"(\w+)[,\"]", re.M)
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float", "sint32",
           "sint64", "fixed32", "fixed64"}
FIELD = re.compile(r"^(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;$")
MAP_FIELD = re.compile(r"^map<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;$")


@dataclass
class Field:
    label: str  # optional, repeated or map
    type: str  # fully qualified for messages
    name: str
    number: int
    key_type: str = ""


@dataclass
class Message:
    package: str
    name: str
    fields: list[Field] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}"


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def parse(text: str) -> list[Message]:
    text = _strip_comments(text)
    package = re.search(r"^package\s+([\w.]+)\s*;", text, re.M)
    assert package, "no package"
    messages: list[Message] = []
    for match in re.finditer(r"message\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
        message = Message(package.group(1), match.group(1))
        for line in (ln.strip() for ln in match.group(2).splitlines()):
            if not line:
                continue
            if found := FIELD.match(line):
                label, kind, name, number = found.groups()
                message.fields.append(Field(label, kind, name, int(number)))
            elif found := MAP_FIELD.match(line):
                key, value, name, number = found.groups()
                message.fields.append(Field("map", value, name, int(number), key_type=key))
            else:
                raise ValueError(f"{message.full_name}: cannot read {line!r}")
        messages.append(message)
    return messages


def qualify(messages: dict[str, Message]) -> None:
    """Make every message-typed field name its type by full name."""
    for message in messages.values():
        for f in message.fields:
            if f.type in SCALARS:
                continue
            f.type = f.type.lstrip(".")
            local = f"{message.package}.{f.type}"
            f.type = local if local in messages else f.type


def reachable(messages: dict[str, Message], roots: list[str]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        if name not in messages:
            raise ValueError(f"unknown message {name}")
        seen.add(name)
        pending += [f.type for f in messages[name].fields if f.type not in SCALARS]
    return seen


def render(package: str, file_of: dict[str, str], messages: list[Message], version: str) -> str:
    imports = sorted({file_of[f.type.rsplit(".", 1)[0]] for m in messages for f in m.fields
                      if f.type not in SCALARS and not f.type.startswith(package + ".")})
    lines = [f"// Wire schema derived by derive.py from upstream's generated.proto ({version}): names, numbers, types.",
             'syntax = "proto2";', "", f"package {package};", ""]
    lines += [f'import "{name}";' for name in imports]
    for message in sorted(messages, key=lambda m: m.name):
        lines += ["", f"message {message.name} {{"]
        for f in message.fields:
            kind = f.type if f.type in SCALARS else "." + f.type
            if f.label == "map":
                lines.append(f"  map<{f.key_type}, {kind}> {f.name} = {f.number};")
            else:
                lines.append(f"  {f.label} {kind} {f.name} = {f.number};")
        lines.append("}")
    return "\n".join(lines) + "\n"


def pointer_fields(sources: dict[str, str], messages: dict[str, Message]) -> list[str]:
    """`package.Message.field` of every field upstream declares as a pointer to a scalar (zero is a value)."""
    found = []
    for package, text in sources.items():
        for struct in GO_STRUCT.finditer(text):
            message = messages.get(f"{package}.{struct.group(1)}")
            if message is None:
                continue
            scalar_fields = {f.name for f in message.fields if f.type in SCALARS}
            for _, json_name in GO_POINTER_FIELD.findall(struct.group(2)):
                if json_name in scalar_fields:
                    found.append(f"{message.full_name}.{json_name}")
    return sorted(found)


def render_pointers(names: list[str], version: str) -> str:
    lines = [f'"""Fields upstream declares as pointers to scalars ({version}), derived by derive.py.',
             "", "In protobuf these arrive like any other field; a zero in them is a value, not \"unset\".",
             '"""', "", "POINTER_FIELDS = frozenset({"]
    lines += [f'    "{name}",' for name in names]
    lines.append("})")
    return "\n".join(lines) + "\n"


def main(api: Path, apimachinery: Path, version: str) -> None:
    messages: dict[str, Message] = {}
    file_of: dict[str, str] = {}  # package -> our file name
    for (repo, path), ours in SOURCES.items():
        for message in parse(((api if repo == "api" else apimachinery) / path).read_text()):
            messages[message.full_name] = message
            file_of[message.package] = ours
    qualify(messages)
    keep = reachable(messages, ROOTS)
    for package, ours in file_of.items():
        kept = [m for name, m in messages.items() if name in keep and m.package == package]
        if kept:
            (HERE / ours).write_text(render(package, file_of, kept, version))
            print(f"{ours}: {len(kept)} messages")
    go = {package: ((api if repo == "api" else apimachinery) / path).read_text()
          for (repo, path), package in GO_TYPES.items()}
    pointers = pointer_fields(go, {name: m for name, m in messages.items() if name in keep})
    (HERE / "pointers.py").write_text(render_pointers(pointers, version))
    print(f"pointers.py: {len(pointers)} pointer fields")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
