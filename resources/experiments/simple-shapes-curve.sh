#!/usr/bin/env bash
# The Simple Shapes pairs curve of docs/results.md: 5 paired counts x {full GW, translations only} x 2 seeds,
# each trained with `gw train` and evaluated on the test split with `gw eval --json`, collected in
# OUT/curve.csv and plotted by `gw-studio --plot-curve` as OUT/simple-shapes-curve.png.
#   resources/experiments/simple-shapes-curve.sh [OUT]          (default OUT: runs/simple-shapes-curve)
# Env: BUILD (default build/release), PAIRS ("200 500 2000 5000 20000"), SEEDS ("0 1"), EXTRA (overrides
# for every run, e.g. EXTRA="training.steps=40000").
# A run whose checkpoints/last.ckpt exists is not trained again, so an interrupted curve resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
OUT=${1:-runs/simple-shapes-curve}
PAIRS=${PAIRS:-"200 500 2000 5000 20000"}
SEEDS=${SEEDS:-"0 1"}
read -r -a EXTRA_ARGS <<< "${EXTRA:-}"
EXP=resources/experiments/simple-shapes.yaml
GW="$BUILD/app/gw"
mkdir -p "$OUT"

# The dataset and both domain modules are made once, before the first run (no-ops when they exist).
"$GW" pretrain "$EXP"

csv="$OUT/curve.csv"
echo "pairs,model,seed,image_mse,category_accuracy,attribute_error,position_error,size_error,rotation_error,colour_error" > "$csv.tmp"
for pairs in $PAIRS; do
  for seed in $SEEDS; do
    for model in full translations; do
      run="$OUT/$model-$pairs-seed$seed"
      extra=()
      [ "$model" = translations ] && extra=(loss.coefficients.demi_cycles=0 loss.coefficients.cycles=0 loss.coefficients.contrastives=0)
      if [ ! -f "$run/checkpoints/last.ckpt" ]; then
        "$GW" train "$EXP" data.paired_count="$pairs" seed="$seed" "${extra[@]}" "${EXTRA_ARGS[@]}" --out "$run" > "$run.log"
      fi
      "$GW" eval "$run/checkpoints/last.ckpt" --split test --json > "$run/test.json"
      label="full GW"
      [ "$model" = translations ] && label="translations only"
      /usr/bin/env python3 - "$run/test.json" "$pairs" "$label" "$seed" >> "$csv.tmp" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
keys = ["translation_attr_to_v_image_mse"] + ["translation_v_to_attr_" + k for k in
        ("category_accuracy", "attribute_error", "position_error", "size_error", "rotation_error", "colour_error")]
print(",".join([sys.argv[2], sys.argv[3], sys.argv[4]] + ["%.6g" % m["test/" + k] for k in keys]))
PY
      echo "$(tail -1 "$csv.tmp")"
    done
  done
done
mv "$csv.tmp" "$csv"
QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} "$BUILD/app/gw-studio" --plot-curve "$csv" --out "$OUT/simple-shapes-curve.png"
