#!/usr/bin/env bash
# Full fine-tuning of the feature model from the pixels (issue 21, item 5): the GPU recipe.
#
# Every stage of the ImageNet EfficientNet-Lite0 trains on BIQ2021's human MOS at 512 px (AdamW, cosine,
# batch-norm statistics kept), starting from the frozen model's ridge fit; the SVR score head, the reasons
# heads and the skin retake rule are then refitted on the tuned statistics, and the run folder is written
# where `python -m diqa_edge.export --checkpoint "$OUT"` reads it. Each photo is decoded once (threads)
# and kept in memory, so later epochs cost the network alone. Resumes: re-run the same command.
#
#   scripts/gpu_tune.sh                                # CUDA, 10 epochs, run folder in the cache root
#   DEVICE=cpu EPOCHS=1 scripts/gpu_tune.sh --input-size 64 --dataset-dir biq2021=... --dataset-dir derm=...
#                                                      # the reduced-scale CPU run its test makes
# Extra arguments go to `diqa-edge train`. Needs the data sets under $DIQA_EDGE_DATA (or ../shared/data)
# and builds the skin set when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-10}
CACHE=${DIQA_EDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/diqa-edge}
DATA=${DIQA_EDGE_DATA:-../shared/data}
OUT=${OUT:-$CACHE/runs/tune-pixels}
if [[ "$DEVICE" == cuda* ]] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_tune.sh: no CUDA device here; run with DEVICE=cpu (slow: about 1 image/s at 512 px)" >&2
  exit 2
fi
if [[ " $* " != *" derm="* ]] && [ ! -f "$CACHE/skin-kadid-512/manifest.csv" ]; then
  "$PY" -m diqa_edge.cli make-skin-set "$DATA/skin-cc0/images" --short-side 512 --workers "$(nproc)"
fi
exec "$PY" -m diqa_edge.training --model pooled-stats --datasets biq2021,derm --tune pixels --device "$DEVICE" \
  --tune-epochs "$EPOCHS" --out "$OUT" "$@"
