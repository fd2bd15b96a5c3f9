#!/usr/bin/env bash
# bash bench/gpu.sh   every GPU figure in one block, on one CUDA GPU, nothing downloaded (limits add up to 7:35, under 8 min with start-up)
#
# 1. training step: InternVL2-2B and -4B shapes (random weights), 8 frames of 448 px, batch 1: step
#    time, tokens/s, peak memory and MFU, with gradient checkpointing and without; flash-attention 2
#    when it is installed (LoadSettings' choice), sdpa otherwise;
# 2. generation: 4B shapes, batch 1 / 8 / 32, samples/s (and the pad share of grouped batches);
# 3. data path: 720p clips against plain transformers, decoding and cached, with the uint8 tiles
#    normalised on the GPU, and the DataModule on the demo;
# 4. backbones: InternVL2-4B against Qwen2.5-VL-3B shapes (random weights), 8 frames, batch 1 and 4: step
#    time, visual tokens and peak memory on the same samples.
# Each part has its own time limit, so one that hangs cannot take the others' time. PY picks the
# interpreter (default: .venv/bin/python when there, else python3); OUT, where the log goes (default /tmp).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
LOG=${OUT:-/tmp}/gpu_bench.txt
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 WANDB_MODE=disabled
if ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "bench/gpu.sh: no CUDA device for $PY" >&2
  exit 1
fi
part() {  # part SECONDS TITLE COMMAND...: one titled part, stopped at its limit
  local limit=$1 title=$2
  shift 2
  echo "== $title"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v -e "Warning" -e "warnings.warn" -e "it/s]" -e "^Seed set"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && echo "(stopped at its ${limit} s limit)"
  echo "(${title%%:*}: $((SECONDS - start)) s, exit $rc)"
}
{
  "$PY" - <<'PY'
import importlib.util, torch, transformers
flash = importlib.util.find_spec("flash_attn") is not None
print(f"{torch.cuda.get_device_name()}; torch {torch.__version__}, transformers {transformers.__version__}, "
      f"flash-attn {'installed' if flash else 'not installed (sdpa)'}")
PY
  part 115 "train step: gradient checkpointing on" "$PY" bench/train_step.py \
    --model internvl2_2b internvl2_4b --batch 1 --steps 5 --warmup 2 --frames 8 --checkpointing
  part 115 "train step: gradient checkpointing off" "$PY" bench/train_step.py \
    --model internvl2_2b internvl2_4b --batch 1 --steps 5 --warmup 2 --frames 8 --no-checkpointing
  part 85 "generation: 4B shapes" "$PY" bench/eval.py --model internvl2_4b --batch 1 8 32 --samples 32
  part 75 "data path" "$PY" bench/data.py --clips 8 --workers 0 --batches 20
  part 65 "backbones: InternVL2-4B vs Qwen2.5-VL-3B" "$PY" bench/backbones.py \
    --model internvl2_4b qwen2_5_vl_3b --batch 1 --steps 5 --warmup 2 --frames 8
} 2>&1 | tee "$LOG"
echo "log: $LOG"
