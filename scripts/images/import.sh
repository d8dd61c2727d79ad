#!/usr/bin/env bash
# Imports an image archive into the local registry, so that pods can run it with no internet:
#
#   scripts/images/import.sh FILE [REF]     (`make import-image FILE=... [REF=...]`)
#
# FILE is a Docker archive (`docker save`) or an OCI archive (a tar of an OCI layout, e.g.
# `skopeo copy ... oci-archive:FILE`). REF is what manifests will say: `nginx:1.25`,
# `docker.io/library/nginx:1.25`, `registry.k8s.io/pause:3.10`, `pyk8s.local/tools/x:1`.
# Without REF the archive's own tag is used (Docker archives carry one; OCI ones must
# have a full name in org.opencontainers.image.ref.name or be given REF).
#
# The registry serves pyk8s.local, docker.io and registry.k8s.io alike (the nodes'
# containerd mirrors all three to it), so the path is the reference minus its registry
# host, with docker.io's `library/` for single names: nginx:1.25 -> library/nginx:1.25.
# Re-importing the same image pushes nothing.
set -euo pipefail
FILE=${1:?usage: import.sh FILE [REF]}
REF=${2:-}
REGISTRY_ADDR=${PYK8S_REGISTRY_ADDR:-127.0.0.1:5000}
REGISTRY_ADDR=${REGISTRY_ADDR/0.0.0.0/127.0.0.1}
[ -f "$FILE" ] || { echo "import: no such file: $FILE" >&2; exit 1; }
curl -fs "http://$REGISTRY_ADDR/v2/" >/dev/null || { echo "import: no registry at $REGISTRY_ADDR (run scripts/setup-platform.sh)" >&2; exit 1; }

entries=$(tar -tf "$FILE")
if grep -qx 'oci-layout' <<<"$entries" || grep -qx './oci-layout' <<<"$entries"; then
    src="oci-archive:$FILE"
    [ -n "$REF" ] || REF=$(tar -xOf "$FILE" index.json 2>/dev/null | python3 -c \
        'import json,sys; print(next((m.get("annotations",{}).get("org.opencontainers.image.ref.name","") for m in json.load(sys.stdin)["manifests"]), ""))')
    [[ "$REF" == *[/:]* ]] || { echo "import: the OCI archive names no image (ref '$REF'); give REF" >&2; exit 1; }
elif grep -qx 'manifest.json' <<<"$entries"; then
    src="docker-archive:$FILE"
    [ -n "$REF" ] || REF=$(tar -xOf "$FILE" manifest.json | python3 -c \
        'import json,sys; print(((json.load(sys.stdin)[0].get("RepoTags") or [""])[0]))')
    [ -n "$REF" ] || { echo "import: the Docker archive has no tag; give REF" >&2; exit 1; }
else
    echo "import: $FILE is neither a Docker nor an OCI archive" >&2
    exit 1
fi

# Normalise REF as a container runtime would: host, path, tag.
first=${REF%%/*}
if [[ "$REF" == */* ]] && [[ "$first" == *.* || "$first" == *:* || "$first" == localhost ]]; then
    host=$first
    path=${REF#*/}
else
    host=docker.io
    path=$REF
fi
[[ "$path" == *:* ]] || path="$path:latest"
[ "$host" = docker.io ] && [[ "$path" != */* ]] && path="library/$path"
case $host in
    docker.io|registry.k8s.io|pyk8s.local) ;;
    *) echo "import: note: $host is not mirrored to the local registry; use pyk8s.local/$path in manifests" >&2 ;;
esac
skopeo copy --quiet --dest-tls-verify=false "$src" "docker://$REGISTRY_ADDR/$path"
echo "import: $REF -> $REGISTRY_ADDR/$path (pull it as pyk8s.local/$path${host:+, or $host/$path})"
