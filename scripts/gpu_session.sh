#!/usr/bin/env bash
# One GPU session: train the six-style zoo (five recipes side by side on one GPU), then the GPU
# benchmarks. Run from the repository root on the GPU machine; everything it needs travels in
# git-ignored folders under out/ (docs/training-findings.md, "Full-scale training on a GPU session"):
#
#   out/photos/        the training photos (scripts/build_photos.py)
#   out/styles/        the six paintings, named as the styles are to be called
#   out/val/           validation photos (held out of out/photos)
#   out/vggpack/       VGG16 up to conv4_3 (the training loss network) and VGG19 up to conv5_1 (the
#                      image-optimization benchmark), float16 or 8-bit codebooks: 28 MB
#
# Results go to $OUT, refreshed every minute: one archive per recipe (the finished model or the
# network at the last checkpoint, loss log, last validation sheet, log) and the benchmark figures.
# Pass TRAIN_SECONDS well inside the device time left (status's budget_left_s minus the machine's
# start and the transfers, and 2 minutes for the benchmark) and give run's timeout_s slack above it.
# The device time is the whole session's: other uses before this call shorten it. Dry run on a CPU at toy size: DEVICE=cpu TRAIN_SECONDS=20 WIDTHS_TOY=1.
set -u
OUT=${OUT:-/tmp/gpu_out}
DEVICE=${DEVICE:-cuda}
TRAIN_SECONDS=${TRAIN_SECONDS:-400}
mkdir -p "$OUT" out/models out/train out/cache
export PYTHONPATH=${SRC:-$PWD/src} PYTHONUNBUFFERED=1 PAINTERLY_CACHE=$PWD/out/cache PAINTERLY_CALIBRATE=0
PY=${PY:-python3}

{
  date -u; nvidia-smi -L 2>/dev/null; nproc
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/session.txt"

$PY scripts/pack_vgg.py --unpack out/vggpack 2>&1 | tee -a "$OUT/session.txt"

STYLES="out/styles/the_wave.jpg out/styles/starry_night.jpg out/styles/the_scream.jpg
        out/styles/composition_vii.jpg out/styles/udnie.jpg out/styles/woman_with_hat.jpg"
if [ "${WIDTHS_TOY:-0}" = 1 ]; then SIZE=(--image-size 64 --validate-every 4 --checkpoint-every 4); W32=8; W16=4; W8=2;
else SIZE=(--image-size 256 --validate-every 500 --checkpoint-every 500); W32=32; W16=16; W8=8; fi

train() {  # NAME, then extra options
  local name=$1; shift
  mkdir -p "out/train/$name"
  timeout -s TERM $((TRAIN_SECONDS + 120)) $PY -m painterly train --style $STYLES --data out/photos \
    -o "out/models/$name.safetensors" --name "${MODEL_NAME:-zoo}" --iterations 1000000 --time-limit "$TRAIN_SECONDS" \
    --device "$DEVICE" --precision bf16 --workdir "out/train/$name" "${SIZE[@]}" \
    --validation out/val/tubingen.jpg out/val/golden_gate.jpg --quiet "$@" > "out/train/$name.log" 2>&1
  echo "$name exit $?" >> "out/train/$name.log"
}
# The loss of the CPU starry_night model that met issue 8's yardstick (docs/training-findings.md,
# "CPU ablations"): content relu3_3, no relu1_2 in the style, the painting at 512 px, TV 1e-3. That
# model reached style weight 0.5 through a schedule (5, 1.5, 0.5); from scratch, 1 is a guess between.
RECIPE2=(--content-layers relu3_3 --style-layers relu2_2,relu3_3,relu4_3 --style-size 512 --tv-weight 1e-3
         --style-weight 1)
RUNS="B_w32_bilinear C_w16_recipe2 D_w32_recipe2 E_starry_w32_recipe2 F_w8_recipe2 G_starry_campaign"
train B_w32_bilinear --width $W32 --upsample bilinear --batch-size 16 &
train C_w16_recipe2 --width $W16 --upsample bilinear --batch-size 16 "${RECIPE2[@]}" &
train D_w32_recipe2 --width $W32 --upsample bilinear --batch-size 16 "${RECIPE2[@]}" &
STYLES=out/styles/starry_night.jpg MODEL_NAME=starry_night train E_starry_w32_recipe2 --width $W32 --upsample bilinear --batch-size 16 "${RECIPE2[@]}" &
train F_w8_recipe2 --width $W8 --upsample bilinear --batch-size 16 "${RECIPE2[@]}" &
# The CPU campaign's recipe (campaign/starry_night/plan.json: the compact shape), continued from the
# network its last stop committed, so that the GPU's steps add to the campaign's (fetch G's latest
# network and stash it with scripts/campaign.py after the session).
CAMPAIGN_ARGS=$($PY -c '
import json
a = json.load(open("campaign/starry_night/plan.json"))["train_args"]
drop = {"--precision", "--batch-size"}
print(" ".join(x for i, x in enumerate(a) if x not in drop and (i == 0 or a[i - 1] not in drop)))')
INIT=(); [ -f campaign/starry_night/latest.safetensors ] && INIT=(--init campaign/starry_night/latest.safetensors)
STYLES=out/styles/starry_night.jpg MODEL_NAME=starry_night train G_starry_campaign $CAMPAIGN_ARGS --batch-size 16 "${INIT[@]}" &
pack() {  # each run's newest network, validation sheet and loss log into $OUT (atomically)
  for run in $RUNS; do
    [ -f "out/train/$run.log" ] || continue
    local files="out/train/$run.log" latest=out/train/$run/latest.safetensors
    # The finished model makes latest.safetensors (the same network) redundant: $OUT holds 64 MiB.
    [ -f "out/models/$run.safetensors" ] && latest=
    for f in out/models/$run.safetensors $latest out/train/$run/losses.jsonl \
             $(ls out/train/$run/val_*.png 2>/dev/null | tail -n 1); do
      [ -f "$f" ] && files="$files $f"
    done
    if tar czf "$OUT/.$run.tgz" $files 2>/dev/null; then mv "$OUT/.$run.tgz" "$OUT/$run.tgz"; else rm -f "$OUT/.$run.tgz"; fi
  done
}
# The machine can be taken back, or the call cut short at the session's remaining device time (the
# limit can be far below timeout_s: the first session lost every run that way). So results go to
# $OUT every minute, not only at the end.
# Stopped by TERM, it finishes the archive it is writing first (the trap runs between commands;
# `sleep & wait` lets TERM end the pause at once): killed mid-tar, its tar would go on writing the
# same .RUN.tgz as the final pack below.
(trap 'exit 0' TERM; t=0; while :; do sleep 60 >/dev/null 2>&1 & wait $!; t=$((t + 60)); pack
   nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null \
     | sed "s/^/GPU at ${t}s: /" >> "$OUT/session.txt"; done) &
packer=$!
wait $(jobs -p | grep -v "^$packer$")
kill $packer 2>/dev/null
wait $packer 2>/dev/null
pack
for run in $RUNS; do tail -n 3 "out/train/$run.log" | tee -a "$OUT/session.txt"; done

models=$(ls out/models/*.safetensors 2>/dev/null | sed 's/^/--model /')
timeout 100 $PY ${BENCH:-benchmarks}/bench_gpu.py out/val/tubingen.jpg out/styles/starry_night.jpg $models \
  --out out/bench $([ "$DEVICE" = cpu ] && echo --dry-run-cpu) 2>&1 | tee -a "$OUT/session.txt"
tar czf "$OUT/bench.tgz" out/bench
ls -la "$OUT"
