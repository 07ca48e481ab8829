#!/usr/bin/env bash
# Installs what building and testing Moat needs on a fresh Debian 12 machine (as root).
# Idempotent: installs only what is missing.
set -euo pipefail
need=()
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
dpkg -s docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# `ip` (network namespaces and veth pairs of the netstack's veth tests).
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The real CNI plugins (bridge, host-local, loopback, portmap) of moat-cri's CNI tests, and the
# iptables that portmap and bridge's ipMasq drive.
dpkg -s containernetworking-plugins >/dev/null 2>&1 || need+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
# `openssl` makes the CA and certificates of moat-cri's HTTPS registry tests; ca-certificates is
# the system CA bundle moat-cri trusts for HTTPS registries.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
dpkg -s ca-certificates >/dev/null 2>&1 || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
