#!/usr/bin/env bash
# GW Studio developer entry point (Debian 12). Installs what is missing, builds, then:
#   packaging/dev.sh run [gw-studio options]  open the window on the Fashion-MNIST experiment
#                                             (without a display: train it with `gw train` instead)
#   packaging/dev.sh test                     run every test (what CI runs)
#   packaging/dev.sh build                    build only
#   packaging/dev.sh package                  build the Debian package (build/release/gw-studio_*.deb)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build pkg-config
          libtorch-dev libopenblas0-pthread libhdf5-dev libyaml-cpp-dev libcli11-dev zlib1g-dev
          libcairo2-dev libpng-dev libssl-dev qt6-base-dev libqcustomplot-dev dataset-fashion-mnist python3-torch
          libprotobuf-dev protobuf-compiler python3-protobuf libboost-dev
          dpkg-dev file help2man appstream desktop-file-utils debootstrap clang libclang-rt-14-dev
          slurm-wlm munge libgloo-dev)

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

# The libFuzzer targets (clang, ASan + UBSan), run by tst_fuzz; docs/fuzzing.md.
build_fuzz() {
  cmake --preset fuzz
  cmake --build --preset fuzz
}

cmd="${1:-run}"
shift || true
case "$cmd" in
  run)   install_missing; build
         if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ -n "${QT_QPA_PLATFORM:-}" ]; then
           exec build/release/app/gw-studio "$@"
         fi
         echo "no display: training from the command line (gw train) instead of opening the window"
         exec build/release/app/gw train resources/experiments/fashion-mnist.yaml "$@" ;;
  test)  install_missing; build; build_fuzz
         status=0
         ctest --preset release "$@" || status=$?
         [ -f build/release/artifacts/main-window-training.png ] &&
           echo "artifact: build/release/artifacts/main-window-training.png (the window while a run trains)"
         exit $status ;;
  build) install_missing; build ;;
  package) install_missing; build
         (cd build/release && cpack -G DEB)
         ls build/release/gw-studio_*.deb ;;
  *)     echo "usage: $0 run|test|build|package" >&2; exit 2 ;;
esac
