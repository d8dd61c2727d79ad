"""The service proxy (kube-proxy): Services and EndpointSlices in, netfilter rules out.

One model (`model`, `tracker`) feeds one backend per mode (`iptables`, `nftables`,
`ipvs`); `proxier` runs the sync loop and `cmd` is the `pyk8s proxy` command.
"""
