#!/usr/bin/env bash
# The attention results of docs/results.md ("Attention on corrupted inputs"): a Fusion GW over Simple Shapes
# with both latents and the workspace at 8 (shimmer's attention adds one corruption vector to both sides),
# then simple-shapes-attention.yaml trained on its corrupted latents, and the same attention untrained (one
# step at a learning rate of 1e-12) as the baseline; `gw eval --split test` prints each side's scores and
# loss per level; `gw-studio --plot-attention` draws the validation sweep.
#   resources/experiments/simple-shapes-attention.sh [OUT]   (default OUT: runs/simple-shapes-attention)
# Env: BUILD (default build/release), EXTRA (overrides for every run, e.g. EXTRA="device=cuda:0"). A run
# whose checkpoints/last.ckpt exists is not trained again.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
OUT=${1:-runs/simple-shapes-attention}
GW="$BUILD/app/gw"
read -r -a EXTRA_ARGS <<< "${EXTRA:-}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

train() {  # RUN EXPERIMENT OVERRIDES...
  local run=$1; shift
  [ -f "$run/checkpoints/last.ckpt" ] || "$GW" train "$@" "${EXTRA_ARGS[@]}" --out "$run" > "$run.log"
}
train "$OUT/gw" resources/experiments/simple-shapes.yaml workspace.flavour=fusion workspace.selection=random \
  domains.attr.latent_dim=8 workspace.dim=8 domains.attr.weights=~/.local/share/gw-studio/simple-shapes-attr-vae-8.pt
train "$OUT/attention" resources/experiments/simple-shapes-attention.yaml attention.gw_run="$OUT/gw"
train "$OUT/untrained" resources/experiments/simple-shapes-attention.yaml attention.gw_run="$OUT/gw" \
  training.steps=1 optimizer.lr=1e-12 training.val_every=0
for run in attention untrained; do
  "$GW" eval "$OUT/$run" --split test | tee "$OUT/$run-test.txt"
done
QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} "$BUILD/app/gw-studio" --plot-attention "$OUT/attention" --out "$OUT/attention-levels.png"
