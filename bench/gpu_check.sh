#!/usr/bin/env bash
# Every CUDA path of the project, each step bounded by `timeout`, logged to one file, with a summary table:
# QLoRA 1-step and 12-step runs on random Llama-shaped models (built offline: bench/make_random_llama.py), peak
# VRAM sampled by nvidia-smi; chat_gpu.py --load-in-4bit with the adapter just trained; batched vs unbatched
# generation (bench/bench_generation.py); embedding chunks/s of `rag.py index` on the sample dump.
#
#   bash bench/gpu_check.sh [LOG]                     # on a CUDA machine; default SHAPES="1b 13b"
#   SHAPES=1b STEP_TIMEOUT=300 bash bench/gpu_check.sh
#   TINY=1 bash bench/gpu_check.sh /tmp/check.log     # CPU smoke test of the script itself (tests/test_gpu_check.py):
#                                                     # a 2-layer model, no 4-bit, 1 and 3 steps
#
# configs/llama2-13b-qlora.yaml runs as shipped: only the model, the data, the output folder, the step count and
# (TINY=1) the quantization are overridden, so report_to (TensorBoard), bf16, the optimizer, packing and every
# other key are the flagship run's (twice it died on a GPU on a key an override had hidden).
#
# Env: PY (python, default .venv/bin/python or python3), WORK (scratch folder, default a temp dir), SHAPES,
# STEP_TIMEOUT (seconds per step, default 900). Exit status: the number of failed steps (0 = all passed).
set -u
cd "$(dirname "$0")/.."
LOG=${1:-gpu_check.log}
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
TINY=${TINY:-0}
if [ "$TINY" = 1 ]; then SHAPES=${SHAPES:-tiny}; else SHAPES=${SHAPES:-"1b 13b"}; fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
: > "$LOG"
SUMMARY="$WORK/summary.tsv"
: > "$SUMMARY"
FAILED=0
HAVE_SMI=$(command -v nvidia-smi >/dev/null 2>&1 && echo 1 || echo 0)

log() { echo "$*" | tee -a "$LOG"; }

# run NAME CMD...: one step under timeout, VRAM sampled while it runs, one summary row
run() {
  local name=$1; shift
  log "== $name: $*"
  local vram="$WORK/vram.$name" sampler="" start rc peak
  : > "$vram"
  if [ "$HAVE_SMI" = 1 ]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$vram" 2>/dev/null &
    sampler=$!
  fi
  start=$(date +%s)
  timeout "$STEP_TIMEOUT" "$@" >> "$LOG" 2>&1
  rc=$?
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
  peak=$(sort -n "$vram" | tail -1)
  [ -z "$peak" ] && peak="-" || peak="$((peak / 1024)).$(( (peak % 1024) * 10 / 1024 )) GiB"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - start ))" "$peak" >> "$SUMMARY"
  log "== $name: rc=$rc"
  [ "$rc" = 0 ] || FAILED=$((FAILED + 1))
}

log "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)  shapes: $SHAPES  work: $WORK"
[ "$HAVE_SMI" = 1 ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"
"$PY" -c "import torch, transformers, peft; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| peft', peft.__version__)" 2>&1 | tee -a "$LOG"

# training data: the project's split if it exists, else the fixed questions with their references
DATA="$WORK/treino.jsonl"
if [ -s json/treino.jsonl ]; then cp json/treino.jsonl "$DATA"; else
  "$PY" - "$DATA" <<'PYEOF'
import json, sys
sys.path.insert(0, ".")
from llamawiki.evaluation import load_questions
from llamawiki.prompt import INSTRUCTION_QA
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for q in load_questions("data/perguntas.csv") * 4:
        f.write(json.dumps({"instruction": INSTRUCTION_QA, "input": q.pergunta, "output": q.resposta_referencia},
                           ensure_ascii=False) + "\n")
PYEOF
fi

if [ "$TINY" = 1 ]; then
  QUANT=(--set quantization=none)
  CHATQ=()
  STEPS_LONG=3
else
  QUANT=()
  CHATQ=(--load-in-4bit)
  STEPS_LONG=12
fi

for shape in $SHAPES; do
  model="$WORK/llama-$shape"
  if [ "$shape" = tiny ]; then
    run "build-$shape" "$PY" bench/make_random_llama.py --hidden 64 --intermediate 128 --layers 2 --heads 4 \
      --kv-heads 2 --vocab 2000 --max-positions 1024 --out "$model"
  else
    run "build-$shape" "$PY" bench/make_random_llama.py --shape "$shape" --out "$model"
  fi
  common=(--config configs/llama2-13b-qlora.yaml --set "model=$model" --set "train_file=$DATA" "${QUANT[@]}")
  run "qlora-1step-$shape" "$PY" finetune.py "${common[@]}" --set eval_file=null --set training.max_steps=1 \
    --output-dir "$WORK/lora1-$shape" --overwrite
  run "qlora-${STEPS_LONG}steps-$shape" "$PY" finetune.py "${common[@]}" --set "eval_file=$DATA" \
    --set "training.max_steps=$STEPS_LONG" --output-dir "$WORK/lora-$shape" --overwrite
  # the config's report_to: tensorboard, as shipped: event files in <output_dir>/runs/<date>_<host>/
  run "tensorboard-events-$shape" bash -c 'ls "$1"/runs/*/events.out.tfevents.*' _ "$WORK/lora-$shape"
  run "chat-gpu-4bit-$shape" "$PY" chat_gpu.py --model "$model" --adapter "$WORK/lora-$shape" "${CHATQ[@]}" \
    --prompt "Qual é a capital do Brasil?" --max-new-tokens 32 --verbose
  run "generation-batch-$shape" "$PY" bench/bench_generation.py --model "$model" "${CHATQ[@]}" --batch-size 8 \
    --prompts 8 --max-new-tokens $([ "$TINY" = 1 ] && echo 8 || echo 64) --repeats 1
done

LIMIT=$([ "$TINY" = 1 ] && echo "--limit 3" || echo "")
run "rag-index-embeddings" "$PY" rag.py index data/ptwiki-amostra-pages-articles.xml.bz2 --index-dir "$WORK/index" $LIMIT
"$PY" -c "import json,sys; m=json.load(open(sys.argv[1])); print('index chunks:', m['counts']['chunks'])" \
  "$WORK/index/manifest.json" 2>/dev/null | tee -a "$LOG"

log ""
log "step	rc	seconds	peak VRAM"
cat "$SUMMARY" | tee -a "$LOG"
grep -E "tok/s|ratio|train_runtime|train_samples_per_second|tokens/s" "$LOG" | grep -v "^== " | tail -40 > "$WORK/figures.txt"
log "-- figures (from the log) --"
cat "$WORK/figures.txt" | tee -a "$LOG"
log "failed steps: $FAILED   log: $LOG"
exit "$FAILED"
