#!/usr/bin/env bash
# Shared by both roles: install the platform and the project, and run components as services.
# The defaults are the VM's layout; the PYK8S_* variables below let the same scripts run
# anywhere else unchanged (the project's tests run them inside the lab's network namespaces).
set -euo pipefail
SRC=${PYK8S_SOURCE:-/opt/pyk8s}                 # the project checkout (the VM's synced folder)
STATE=${PYK8S_STATE_DIR:-/var/lib/pyk8s}        # data of every component on this machine
SHARED=${PYK8S_SHARED_DIR:-/var/lib/pyk8s-shared}   # what the host hands from the control plane to workers
UNIT_DIR=${PYK8S_UNIT_DIR:-/etc/systemd/system}
BIN_DIR=${PYK8S_BIN_DIR:-/usr/local/bin}
export PYK8S_STATE_DIR=$STATE
PYK8S=$BIN_DIR/pyk8s

# install_platform [--packages-only]: the README's installer; workers need no registry of their own.
install_platform() {
    "$SRC/scripts/bootstrap.sh"
    "$SRC/scripts/setup-platform.sh" "$@"
    mkdir -p "$BIN_DIR"
    ln -sf "$SRC/.venv/bin/pyk8s" "$PYK8S"
}

# write_unit NAME DESCRIPTION COMMAND...: a systemd unit that restarts the component, enabled
# and started. Where systemd is not running (a container, the lab), the same command runs
# under a restart loop with the unit's 2 s back-off, its log in $STATE/log/NAME.log.
write_unit() {
    local name=$1 description=$2; shift 2
    mkdir -p "$UNIT_DIR"
    cat > "$UNIT_DIR/${name}.service" <<UNIT
[Unit]
Description=${description}
After=network-online.target

[Service]
ExecStart=$*
Restart=always
RestartSec=2
KillMode=process
Delegate=yes
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
UNIT
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable --now "${name}.service"
        return
    fi
    echo "no systemd here: ${name} runs under a restart loop (log: $STATE/log/${name}.log)"
    mkdir -p "$STATE/log" "$STATE/run"
    ulimit -n 1048576 2>/dev/null || true
    setsid bash -c 'while :; do "$@"; sleep 2; done' "$name" "$@" \
        > "$STATE/log/${name}.log" 2>&1 < /dev/null &
    echo $! > "$STATE/run/${name}.pid"
}
