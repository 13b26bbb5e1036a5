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
# Run from the repository's root. PAINTING is a file name under ../shared/images
# ($PAINTERLY_SHARED) or a path (a campaign's cropped painting: RUN/style/STEM.png); ANCHOR a
# file name under ../shared/anchors. One thread, so a campaign in the background keeps the other core.
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,13p' "$0"; exit 2; }
NAME=$1 MODEL=$2 PAINTING=$3 ANCHOR=$4 OUT=${5:-/tmp/ship_$1}
S=${PAINTERLY_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
[ -f "$PAINTING" ] || PAINTING=$S/images/$PAINTING
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
sys.path.insert(0, "scripts")
from campaign import anchor_picture
anchor_picture(sys.argv[1], 384).save(sys.argv[2])
EOF
for photo in tubingen golden_gate; do
  echo "== $photo, 512 px: new, zoo (style_ratio lower = more styled; content_ratio lower = more photo)"
  $PY "$S/tools/score.py" "$S/images/$photo.jpg" "$PAINTING" \
    "$OUT/${photo}_new.png" "$OUT/${photo}_zoo.png" --size 512
done
echo "== chicago, 384 px: new, zoo, $ANCHOR"
$PY "$S/tools/score.py" "$S/anchors/chicago.jpg" "$PAINTING" \
  "$OUT/chicago_new.png" "$OUT/chicago_zoo.png" "$OUT/chicago_anchor.png" --size 384
echo "== grid hatching (lattice4; photos and hatching-free paintings under about 0.5)"
$PY scripts/hatching_check.py "$OUT/tubingen_new.png" "$OUT/golden_gate_new.png" "$OUT/chicago_new.png"
echo "pictures: $OUT"
