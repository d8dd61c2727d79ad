#!/usr/bin/env bash
# Shared by both roles: install the platform and the project from /opt/pyk8s.
set -euo pipefail
cd /opt/pyk8s
./scripts/bootstrap.sh
./scripts/setup-platform.sh
ln -sf /opt/pyk8s/.venv/bin/pyk8s /usr/local/bin/pyk8s

# write_unit NAME DESCRIPTION COMMAND...: a systemd unit that restarts the component.
write_unit() {
    local name=$1 description=$2; shift 2
    cat > "/etc/systemd/system/${name}.service" <<UNIT
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
    systemctl daemon-reload
    systemctl enable --now "${name}.service"
}
