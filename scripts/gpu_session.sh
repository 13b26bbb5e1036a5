#!/usr/bin/env bash
# One GPU session: train every campaign's style (campaign/*/plan.json) side by side on one GPU, then
# the GPU benchmarks. Run from the repository root on the GPU machine; everything it needs travels in
# git-ignored folders under out/ (docs/training-findings.md, "Full-scale training on a GPU session"):
#
#   out/photos/        the training photos (scripts/build_photos.py)
#   out/styles/        the campaigns' paintings, by their plans' file names (plan.json "style"),
#                      cropped into out/styles/cropped/NAME/ where a plan says ("style_crop")
#   out/val/           validation photos: tubingen.jpg, golden_gate.jpg, chicago.jpg (held out of out/photos)
#   out/vggpack/       VGG16 up to conv4_3 (the training loss network) and VGG19 up to conv5_1 (the
#                      image-optimization benchmark), float16 or 8-bit codebooks: 28 MB
#
# Results go to $OUT, refreshed every minute: one archive per style (the finished model or the
# network at the last checkpoint, loss log, last validation sheet, log) and the benchmark figures.
# Pass TRAIN_SECONDS well inside the device time left (status's budget_left_s minus the machine's
# start and the transfers, and 2 minutes for the benchmark) and give run's timeout_s slack above it.
# The device time is the whole session's: other uses before this call shorten it.
# Dry run on a CPU at toy size (128 px crops): DEVICE=cpu TRAIN_SECONDS=20 TOY=1.
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

if [ "${TOY:-0}" = 1 ]; then SIZE=(--image-size 128 --validate-every 4 --checkpoint-every 4);
else SIZE=(--image-size 256 --validate-every 500 --checkpoint-every 500); fi
VAL=(out/val/tubingen.jpg out/val/golden_gate.jpg); [ -f out/val/chicago.jpg ] && VAL+=(out/val/chicago.jpg)

train() {  # NAME STYLE_FILE, then the options (SIZE goes last: a toy dry run overrides the plan's crop)
  local name=$1 style=$2; shift 2
  mkdir -p "out/train/$name"
  timeout -s TERM $((TRAIN_SECONDS + 120)) $PY -m painterly train --style "$style" --data out/photos \
    -o "out/models/$name.safetensors" --name "$name" --iterations 1000000 --time-limit "$TRAIN_SECONDS" \
    --device "$DEVICE" --precision bf16 --workdir "out/train/$name" \
    --validation "${VAL[@]}" --quiet "$@" "${SIZE[@]}" > "out/train/$name.log" 2>&1
  echo "$name exit $?" >> "out/train/$name.log"
}
# Every campaign's style (campaign/*/plan.json) side by side on the one GPU, each with its plan's
# recipe at batch 16 instead of 4. A campaign with a stash (campaign/NAME/latest.safetensors)
# continues from it, so the GPU's steps add to the CPU campaign's: after the session, put the
# fetched network in the run folder and stash it with scripts/campaign.py. The others start where
# their plan starts them (start_from: starry_night's finished network, or the_wave's for the_scream), so every style stays in
# one family whose models blend by their weights (painterly models blend).
RUNS=""; PIDS=()
while IFS='|' read -r name style init args; do
  [ -f "$style" ] || { echo "no $style: $name left out" | tee -a "$OUT/session.txt"; continue; }
  INIT=(); [ -n "$init" ] && INIT=(--init "$init")
  RUNS="$RUNS $name"
  train "$name" "$style" $args --batch-size 16 "${INIT[@]}" &  # args: plain words
  PIDS+=($!)
done < <($PY - 2>>"$OUT/session.txt" <<'PLANS'
import sys
from pathlib import Path
sys.path.insert(0, "scripts")
from campaign import Plan, style_image  # the plans as the CPU campaign reads them (unknown keys refused)
from painterly.feedforward.model_file import read_metadata
drop = {"--precision", "--batch-size"}
for path in sorted(Path("campaign").glob("*/plan.json")):
    plan = Plan.read(path)
    a = plan.train_args
    args = [x for i, x in enumerate(a) if x not in drop and (i == 0 or a[i - 1] not in drop)]
    init = str(plan.stash) if plan.stash.is_file() else (plan.start_from or "")
    if plan.stash.is_file():  # a campaign at its planned steps is done: the GPU goes to the others
        steps = read_metadata(plan.stash).get("campaign_steps") or 0
        if steps >= plan.planned_steps:
            print(f"{plan.name}: finished ({steps} steps), left out", file=sys.stderr)
            continue
    style = Path("out/styles") / plan.style  # cropped as the plan says, as on the CPU
    if style.is_file():
        style = style_image(plan, style, Path("out/styles/cropped") / plan.name)
    print("|".join([plan.name, str(style), init, " ".join(args)]))
PLANS
)
echo "runs:$RUNS" | tee -a "$OUT/session.txt"
if [ ${#PIDS[@]} = 0 ]; then  # nothing to wait for: say so rather than spend the device time
  echo "no training run started (out/styles? campaign plans?); benchmarks only" | tee -a "$OUT/session.txt"
fi
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
[ ${#PIDS[@]} -gt 0 ] && wait "${PIDS[@]}"
kill $packer 2>/dev/null
wait $packer 2>/dev/null
pack
for run in $RUNS; do tail -n 3 "out/train/$run.log" | tee -a "$OUT/session.txt"; done

models=$(ls out/models/*.safetensors 2>/dev/null | sed 's/^/--model /')
timeout 100 $PY ${BENCH:-benchmarks}/bench_gpu.py out/val/tubingen.jpg out/styles/starry_night.jpg $models \
  --out out/bench $([ "$DEVICE" = cpu ] && echo --dry-run-cpu) 2>&1 | tee -a "$OUT/session.txt"
tar czf "$OUT/bench.tgz" out/bench
ls -la "$OUT"
