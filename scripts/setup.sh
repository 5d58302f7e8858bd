#!/usr/bin/env bash
# Installs the Debian 12 packages Aspen needs to build and test.
# Idempotent: when everything is already installed it only checks and returns.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake ninja-build ccache pkg-config
  protobuf-compiler libprotobuf-dev
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  liblmdb-dev zlib1g-dev libtomlplusplus-dev nlohmann-json3-dev
  libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev libasio-dev libsodium-dev
  b3sum libsqlite3-dev sqlite3
  libcpp-httplib-dev prometheus tmux libncurses-dev
  bind9-dnsutils libfuse3-dev fuse3
  iproute2 nftables e2fsprogs mount util-linux
  libc-ares-dev dnsmasq-base
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
