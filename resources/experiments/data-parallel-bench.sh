#!/usr/bin/env bash
# Data-parallel training on the wide configuration of `gw bench` (two 512-d domains, W 256, hidden
# 1024 x 2, batch 1024, identity domain modules, every sample paired): one process against
# `gw train --nproc 2`, each with `gw train`'s own steps/s and, for the ranks, the time rank 0 spends in
# collectives per step. The numbers of docs/benchmarks.md ("Data-parallel training") come from here.
#   resources/experiments/data-parallel-bench.sh [STEPS]        (default 20 steps per run)
# Env: BUILD (default build/release), OUT (default a temporary folder, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
STEPS=${1:-20}
GW="$(pwd)/$BUILD/app/gw"
OUT=${OUT:-$(mktemp -d)}
[ -z "${KEEP:-}" ] && trap 'rm -rf "$OUT"' EXIT

/usr/bin/python3 - "$OUT/wide.h5" <<'PY'
import sys
import h5py, numpy as np
rng = np.random.default_rng(0)
with h5py.File(sys.argv[1], "w") as f:
    for split, n in (("train", 4096), ("val", 1024)):
        for d in ("a", "b"):
            f[f"/{split}/{d}"] = rng.standard_normal((n, 512), dtype=np.float32)
PY
cat > "$OUT/wide.yaml" <<YAML
name: wide
seed: 0
data: {file: wide.h5, paired_fraction: 1.0}
domains:
  a: {module: identity}
  b: {module: identity}
workspace: {dim: 256, encoder: {hidden: 1024, layers: 2}, decoder: {hidden: 1024, layers: 2}}
loss: {coefficients: {demi_cycles: 1, cycles: 1, translations: 1, contrastives: 0}}
training: {steps: $STEPS, batch_size: 1024, log_every: $STEPS, val_every: 0, checkpoint_every: 0, out: runs}
YAML

run() {  # label, gw train arguments...
  local label=$1
  shift
  local log="$OUT/$label.log"
  "$GW" train "$OUT/wide.yaml" --out "$OUT/$label" "$@" > "$log" 2>&1 || { cat "$log"; exit 1; }
  local sps comm
  sps=$(grep -o '[0-9.]* steps/s' "$log" | tail -1)
  comm=$(grep -o 'rank 0 spent [0-9.]* ms per step in collectives' "$log" || true)
  printf '%-28s %s%s\n' "$label" "$sps" "${comm:+; $comm}"
}
echo "wide, $STEPS steps per run ($(nproc) cores)"
run "1 process, 2 threads" --threads 2
run "1 process, 1 thread" --threads 1
run "2 ranks, 1 thread each" --nproc 2
