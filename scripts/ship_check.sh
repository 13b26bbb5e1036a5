#!/usr/bin/env bash
# Before a campaign's network ships as a style: paint the validation photos with it and with the
# zoo's row of that style, score both (and Johnson et al.'s picture of chicago) with the shared
# yardstick, and measure grid hatching. The pictures land in OUT, to be looked at: the yardstick
# is a guard, not the judge.
#
#   scripts/ship_check.sh NAME MODEL PAINTING ANCHOR [OUT]
#   scripts/ship_check.sh the_scream campaign/the_scream/latest.safetensors the_scream.jpg \
#       jfn_chicago_scream.jpg /tmp/ship_scream
#
# PAINTING and ANCHOR are file names under ../shared/images and ../shared/anchors
# ($PAINTERLY_SHARED); one thread, so a campaign in the background keeps the other core.
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,12p' "$0"; exit 2; }
NAME=$1 MODEL=$2 PAINTING=$3 ANCHOR=$4 OUT=${5:-/tmp/ship_$1}
S=${PAINTERLY_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
grep -m1 "model name" /proc/cpuinfo || true
paint() {  # PHOTO SIZE
  local photo=$1 size=$2 stem
  stem=$(basename "${photo%.*}")
  $PY -m painterly stylize "$photo" -m "$MODEL" --size "$size" -o "$OUT/${stem}_new.png" >/dev/null
  $PY -m painterly stylize "$photo" -m zoo --style-mix "$NAME" --size "$size" -o "$OUT/${stem}_zoo.png" >/dev/null
}
for photo in tubingen golden_gate; do paint "$S/images/$photo.jpg" 512; done
paint "$S/anchors/chicago.jpg" 384
$PY - "$S/anchors/$ANCHOR" "$OUT/chicago_anchor.png" <<'EOF'
import sys
from PIL import Image
picture = Image.open(sys.argv[1]).convert("RGB")
picture.thumbnail((384, 384))
picture.save(sys.argv[2])
EOF
for photo in tubingen golden_gate; do
  echo "== $photo, 512 px: new, zoo (style_ratio lower = more styled; content_ratio lower = more photo)"
  $PY "$S/tools/score.py" "$S/images/$photo.jpg" "$S/images/$PAINTING" \
    "$OUT/${photo}_new.png" "$OUT/${photo}_zoo.png" --size 512
done
echo "== chicago, 384 px: new, zoo, $ANCHOR"
$PY "$S/tools/score.py" "$S/anchors/chicago.jpg" "$S/images/$PAINTING" \
  "$OUT/chicago_new.png" "$OUT/chicago_zoo.png" "$OUT/chicago_anchor.png" --size 384
echo "== grid hatching (lattice4; photos and hatching-free paintings under about 0.5)"
$PY scripts/hatching_check.py "$OUT/tubingen_new.png" "$OUT/golden_gate_new.png" "$OUT/chicago_new.png"
echo "pictures: $OUT"
