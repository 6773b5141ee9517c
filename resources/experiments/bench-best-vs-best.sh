#!/usr/bin/env bash
# Every `gw bench` of docs/benchmarks.md against its PyTorch reference, best against best: each side at
# every thread count from 1 to the cores, repeats interleaved (docs/benchmarks.md, "How gw bench
# compares"). Prints each benchmark's lines and keeps them in OUT/bench.txt.
#   resources/experiments/bench-best-vs-best.sh REFERENCE_DIR [OUT]
# REFERENCE_DIR holds pytorch_reference.py and pytorch_vae_reference.py (not part of this repository);
# GLOM's reference is tests/python/glom_reference.py. Env: BUILD (default build/release), PYTHON
# (default /usr/bin/python3: it needs torch), REPEATS (default 3), ONLY (e.g. "pretrain glom").
set -euo pipefail
cd "$(dirname "$0")/../.."
REF=${1:?usage: $0 REFERENCE_DIR [OUT]}
OUT=${2:-runs/bench-best-vs-best}
BUILD=${BUILD:-build/release}
PYTHON=${PYTHON:-/usr/bin/python3}
REPEATS=${REPEATS:-3}
ONLY=${ONLY:-"tutorial tutorial-fusion ssd ssd-fusion wide pretrain glom"}
mkdir -p "$OUT"
exec > >(tee "$OUT/bench.txt")
echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for what in $ONLY; do
  flavour=two_domains
  case $what in
    tutorial) args=(tutorial --steps 400) ;;
    tutorial-fusion) args=(tutorial --steps 400); flavour=fusion ;;
    ssd) args=(ssd --steps 20) ;;
    ssd-fusion) args=(ssd --steps 20); flavour=fusion ;;
    wide) args=(wide --steps 10) ;;
    pretrain) args=(pretrain --steps 10) ;;
    glom) args=(glom --steps 3) ;;
    *) echo "unknown benchmark $what" >&2; exit 2 ;;
  esac
  case $what in
    pretrain) ref="$REF/pytorch_vae_reference.py" ;;
    glom) ref=tests/python/glom_reference.py ;;
    *) ref="$REF/pytorch_reference.py"; args+=(--flavour "$flavour") ;;
  esac
  echo "## $what (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$BUILD/app/gw" bench "${args[@]}" --repeats "$REPEATS" --reference "$ref" --python "$PYTHON"
done
