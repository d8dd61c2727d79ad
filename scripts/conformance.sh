#!/usr/bin/env bash
# `make conformance`: upstream's conformance suite (e2e.test of k8s.io/kubernetes, pinned in
# conformance/go.mod) against pyk8s. Not part of `make test` or CI: it takes tens of minutes.
#
#   1. builds e2e.test, agnhost, nnp and the ginkgo CLI from conformance/ (Go module cache is
#      Go's own; binaries cached in $TOOLS/<version>/, rebuilt only when go.mod/go.sum change);
#   2. writes the stand-in images (scripts/images/e2e.py) and pushes those the local registry
#      lacks; e2e.test is pointed at them with KUBE_TEST_REPO_LIST (conformance/repo-list.yaml);
#   3. brings up a 2-node lab (or uses $KUBECONFIG when set), runs the [Conformance] tests
#      minus conformance/skip.txt: the parallel part (label !Serial, $PROCS ginkgo processes),
#      then the [Serial] part one at a time, as upstream's conformance runner does;
#   4. writes conformance/results/summary.md (per SIG: passed, failed, skipped); the raw
#      logs and JUnit XML stay in conformance/results/<run>/ (gitignored).
#
# Environment:
#   FOCUS='\[sig-api-machinery\].*Conformance'   a regex on test names (default: \[Conformance\])
#   KUBECONFIG=...          use this cluster instead of a lab of our own
#   PROCS=3                 parallel ginkgo processes for the non-serial part (1: no ginkgo CLI)
#   SERIAL=0                skip the [Serial] part
#   DRY_RUN=1               list what would run (ginkgo dry run), no cluster needed
#   BUILD_ONLY=1            build binaries and images, push them, write images.txt; no run
#   TIMEOUT=3h              ginkgo suite timeout of the parallel part (tests not reached count
#                           as skipped "not reached"); SERIAL_TIMEOUT for the serial one
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MOD=$ROOT/conformance
TOOLS=${PYK8S_TOOLS_DIR:-/var/lib/pyk8s/tools}/conformance
VERSION=$(awk '($1 == "require" && $2 == "k8s.io/kubernetes") {print $3; exit} ($1 == "k8s.io/kubernetes" && $2 ~ /^v/) {print $2; exit}' "$MOD/go.mod")
[ -n "$VERSION" ] || { echo "conformance: no k8s.io/kubernetes in $MOD/go.mod" >&2; exit 1; }
BIN=$TOOLS/$VERSION
FOCUS=${FOCUS:-'\[Conformance\]'}
PROCS=${PROCS:-3}
SERIAL=${SERIAL:-1}
TIMEOUT=${TIMEOUT:-3h}
REGISTRY_ADDR=${PYK8S_REGISTRY_ADDR:-127.0.0.1:5000}
REGISTRY_ADDR=${REGISTRY_ADDR/0.0.0.0/127.0.0.1}
say() { echo "conformance: $*" >&2; }

# --- 1. binaries --------------------------------------------------------------------------
stamp=$(cat "$MOD/go.mod" "$MOD/go.sum" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$BIN/.stamp" 2>/dev/null || true)" != "$stamp" ] || \
   [ ! -x "$BIN/e2e.test" ] || [ ! -x "$BIN/agnhost" ] || [ ! -x "$BIN/nnp" ] || [ ! -x "$BIN/ginkgo" ]; then
    command -v go >/dev/null || { say "go is not installed"; exit 1; }
    mkdir -p "$BIN"
    say "building e2e.test, agnhost, nnp, ginkgo for k8s.io/kubernetes $VERSION into $BIN (about 15-25 min on 2 cores)"
    start=$(date +%s)
    (
        cd "$MOD"
        go mod download
        # Go's default cgo setting for all but nnp, so agnhost reuses e2e.test's build cache
        # (CGO_ENABLED=0 would compile client-go and the rest a second time); e2e.py puts the
        # libraries `ldd agnhost` names into its image. nnp links nothing; it is made static.
        go test -c -o "$BIN/e2e.test.new" k8s.io/kubernetes/test/e2e
        go build -o "$BIN/ginkgo.new" github.com/onsi/ginkgo/v2/ginkgo
        go build -o "$BIN/agnhost.new" k8s.io/kubernetes/test/images/agnhost
        CGO_ENABLED=0 go build -o "$BIN/nnp.new" k8s.io/kubernetes/test/images/nonewprivs
    )
    for b in e2e.test agnhost nnp ginkgo; do mv "$BIN/$b.new" "$BIN/$b"; done
    echo "$stamp" > "$BIN/.stamp"
    say "built in $(( $(date +%s) - start )) s; $(du -sh "$BIN" | cut -f1) in $BIN"
fi
"$BIN/e2e.test" --list-images 2>/dev/null | sort > "$MOD/images.txt.new"
mv "$MOD/images.txt.new" "$MOD/images.txt"

# --- 2. images ----------------------------------------------------------------------------
./scripts/setup-platform.sh >/dev/null   # the registry and the project's own images
mkdir -p "$BIN/images"
certs=$(cd "$MOD" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/images/agnhost/porter
.venv/bin/python scripts/images/e2e.py "$BIN/images" --agnhost "$BIN/agnhost" --nnp "$BIN/nnp" \
    --certs "$certs" > "$BIN/images/digests.txt"
pushed=0
while read -r name_tag digest; do
    name=${name_tag%%:*}
    tag=${name_tag##*:}
    have=$(curl -fsI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REGISTRY_ADDR/v2/$name/manifests/$tag" 2>/dev/null | tr -d '\r' |
        awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' || true)
    if [ "$have" != "$digest" ]; then
        skopeo copy --quiet --dest-tls-verify=false "oci:$BIN/images/${name//\//_}-$tag:$tag" \
            "docker://$REGISTRY_ADDR/$name:$tag"
        pushed=$((pushed + 1))
    fi
done < "$BIN/images/digests.txt"
say "$(wc -l < "$BIN/images/digests.txt") stand-in images in the registry at $REGISTRY_ADDR ($pushed pushed now)"
export KUBE_TEST_REPO_LIST=$MOD/repo-list.yaml
[ "${BUILD_ONLY:-0}" = 1 ] && exit 0

# --- 3. cluster ---------------------------------------------------------------------------
# kubectl: the v1.31 client (the server's minor), for the readiness wait and the kubectl tests.
KUBECTL=${KUBECTL:-$ROOT/.venv/bin/kubectl}
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl || true)
[ -n "$KUBECTL" ] || { say "no kubectl (the kubectl tests and the node wait need one); set KUBECTL="; exit 1; }
RUN=$MOD/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN"
LAB_DATA=""
cleanup() {
    if [ -n "$LAB_DATA" ]; then
        say "removing the lab"
        .venv/bin/pyk8s lab down --data-dir "$LAB_DATA" --name "${LAB_NAME:-conf}" >/dev/null 2>&1 || true
        rm -rf "$LAB_DATA"
    fi
}
if [ "${DRY_RUN:-0}" = 1 ]; then
    KC=${KUBECONFIG:-/dev/null}
elif [ -n "${KUBECONFIG:-}" ]; then
    KC=$KUBECONFIG
else
    LAB_DATA=${CONFORMANCE_DATA:-/var/lib/pyk8s/conformance-lab}
    trap cleanup EXIT
    .venv/bin/pyk8s lab down --data-dir "$LAB_DATA" --name "${LAB_NAME:-conf}" >/dev/null 2>&1 || true
    rm -rf "$LAB_DATA"
    say "lab up in $LAB_DATA"
    .venv/bin/pyk8s lab up --data-dir "$LAB_DATA" --nodes "${NODES:-2}" --name "${LAB_NAME:-conf}" \
        --subnet "${LAB_SUBNET:-10.231.7.0/24}" > "$RUN/lab-up.log" 2>&1 || { cat "$RUN/lab-up.log" >&2; exit 1; }
    KC=$LAB_DATA/admin.kubeconfig
    # `lab up` returns when the agents run; e2e.test wants the nodes registered and Ready.
    for _ in $(seq 1 120); do
        ready=$("$KUBECTL" --kubeconfig "$KC" get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)
        [ "$ready" -ge "${NODES:-2}" ] && break
        sleep 1
    done
    [ "$ready" -ge "${NODES:-2}" ] || { say "only $ready of ${NODES:-2} nodes Ready after 120 s"; exit 1; }
fi


# --- 4. run -------------------------------------------------------------------------------
skip=$(sed -e '/^[[:space:]]*#/d' -e 's/[[:space:]]#.*$//' -e '/^[[:space:]]*$/d' "$MOD/skip.txt" | paste -sd'|')
common=(--kubeconfig="$KC" --provider=skeleton --report-dir=REPORT_DIR
        --e2e-output-dir="$RUN" --disable-log-dump --dump-logs-on-failure=false)
[ -n "$KUBECTL" ] && common+=(--kubectl-path="$KUBECTL")
if [ "${DRY_RUN:-0}" = 1 ]; then
    common+=(--ginkgo.dry-run)
    PROCS=1   # ginkgo dry-runs in series only
fi

run_part() {  # name label-filter procs timeout
    local part=$1 labels=$2 procs=$3 TIMEOUT=$4 dir=$RUN/$1 rc=0
    mkdir -p "$dir"
    local args=("${common[@]/REPORT_DIR/$dir}")
    say "$part: focus=$FOCUS labels='$labels' procs=$procs (log: $dir/e2e.log)"
    local start
    start=$(date +%s)
    if [ "$procs" -gt 1 ]; then
        # The CLI writes its own JUnit file too: e2e.test's (--report-dir) comes from process 1
        # only, and a test that fails inside a goroutine of its own (chunking.go does) kills its
        # process; the CLI's report still has every spec the other processes ran.
        "$BIN/ginkgo" run --procs="$procs" --focus="$FOCUS" ${skip:+--skip="$skip"} --label-filter="$labels" \
            --timeout="$TIMEOUT" --no-color --output-interceptor-mode=none \
            --output-dir="$dir" --junit-report=junit_ginkgo.xml "$BIN/e2e.test" -- "${args[@]}" \
            > "$dir/e2e.log" 2>&1 || rc=$?
    else
        "$BIN/e2e.test" --ginkgo.focus="$FOCUS" ${skip:+--ginkgo.skip="$skip"} --ginkgo.label-filter="$labels" \
            --ginkgo.timeout="$TIMEOUT" --ginkgo.no-color "${args[@]}" > "$dir/e2e.log" 2>&1 || rc=$?
    fi
    echo "$(( $(date +%s) - start ))" > "$dir/seconds"
    say "$part: exit $rc after $(cat "$dir/seconds") s"
    tail -n 30 "$dir/e2e.log" | grep -E '^(Ran|FAIL|PASS|SUCCESS)' >&2 || true
}
run_part parallel 'Conformance && !Serial' "$PROCS" "$TIMEOUT"
[ "$SERIAL" = 1 ] && run_part serial 'Conformance && Serial' 1 "${SERIAL_TIMEOUT:-$TIMEOUT}"

# --- 5. summary ---------------------------------------------------------------------------
SUMMARY=$MOD/results/summary.md
[ "${DRY_RUN:-0}" = 1 ] && SUMMARY=$RUN/dry-run.md   # a dry run lists, it does not measure
.venv/bin/python conformance/summarize.py --run "$RUN" --focus "$FOCUS" --version "$VERSION" \
    --skip-list "$MOD/skip.txt" --out "$SUMMARY"
say "summary: $SUMMARY; raw results in $RUN"
