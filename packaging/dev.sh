#!/usr/bin/env bash
# GW Studio developer entry point (Debian 12). Installs what is missing, builds, then:
#   packaging/dev.sh run [gw train options]   train the Fashion-MNIST experiment from the command line
#   packaging/dev.sh test                     run every test (what CI runs)
#   packaging/dev.sh build                    build only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build pkg-config
          libtorch-dev libopenblas0-pthread libhdf5-dev libyaml-cpp-dev libcli11-dev zlib1g-dev
          qt6-base-dev dataset-fashion-mnist)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  cmake --preset release
  cmake --build --preset release
}

cmd="${1:-run}"
shift || true
case "$cmd" in
  run)   install_missing; build; exec build/release/app/gw train resources/experiments/fashion-mnist.yaml "$@" ;;
  test)  install_missing; build; exec ctest --preset release "$@" ;;
  build) install_missing; build ;;
  *)     echo "usage: $0 run|test|build" >&2; exit 2 ;;
esac
