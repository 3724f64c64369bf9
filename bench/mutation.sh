#!/usr/bin/env bash
# Mutation testing with mutmut 3.8.1: does each module's own test file catch bugs planted in the module?
# Not part of CI (minutes to hours). Results and the surviving mutants we leave: docs/benchmarks.md, "Mutação".
#
#   .venv/bin/pip install mutmut==3.8.1
#   bench/mutation.sh                      # dump wikitext metrics split evaluation lora_gguf
#   bench/mutation.sh dump wikitext        # some modules only
#   MUTATION_OUT=/tmp/mut bench/mutation.sh wikitext   # where the reports go (default: a temporary folder)
#
# Each module is mutated in its own temporary copy of the tracked files (mutmut writes mutants/ and a
# setup.cfg there; the checkout is never touched), and only the test file that owns the module runs against
# each mutant. Per module: <out>/<module>.txt (mutmut results: the mutants not killed) and the score line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="${MUTATION_OUT:-$(mktemp -d -t mutation-XXXXXX)}"
CHILDREN="${MUTATION_CHILDREN:-2}"
mkdir -p "$OUT"

declare -A TESTS=(
  [dump]="tests/test_dump.py"
  [wikitext]="tests/test_wikitext.py"
  [metrics]="tests/test_metrics.py"
  [split]="tests/test_split.py"
  [evaluation]="tests/test_evaluation.py"
  [lora_gguf]="tests/test_lora_gguf.py"
)
MODULES=("$@")
[ ${#MODULES[@]} -gt 0 ] || MODULES=(dump wikitext metrics split evaluation lora_gguf)

for mod in "${MODULES[@]}"; do
  [ -n "${TESTS[$mod]:-}" ] || { echo "error: $mod: unknown module (known: ${!TESTS[*]})" >&2; exit 2; }
done
have="$("$PY" -c 'import importlib.metadata as m
try:
    print(m.version("mutmut"))
except m.PackageNotFoundError:
    print("none")' 2>/dev/null || echo none)"
[ "$have" = "3.8.1" ] \
  || { echo "error: mutmut 3.8.1 is not installed (found: $have): $PY -m pip install mutmut==3.8.1" >&2; exit 2; }

for mod in "${MODULES[@]}"; do
  tests="${TESTS[$mod]}"
  work="$(mktemp -d -t "mutation-$mod-XXXXXX")"
  (cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$work")
  cat > "$work/setup.cfg" <<EOF
[mutmut]
source_paths =
    llamawiki/
only_mutate =
    llamawiki/$mod.py
also_copy =
    data/
pytest_add_cli_args_test_selection =
    $tests
pytest_add_cli_args =
    -q
    -p
    no:cacheprovider
EOF
  start=$(date +%s)
  (cd "$work" && "$PY" -m mutmut run --max-children "$CHILDREN" > "$OUT/$mod.run.log" 2>&1) || true
  (cd "$work" && "$PY" -m mutmut results --all true > "$OUT/$mod.all.txt" 2>&1) || true
  (cd "$work" && "$PY" -m mutmut results > "$OUT/$mod.txt" 2>&1) || true
  total=$(grep -c ': ' "$OUT/$mod.all.txt" || true)
  killed=$(grep -c ': killed' "$OUT/$mod.all.txt" || true)
  survived=$(grep -c ': survived' "$OUT/$mod.all.txt" || true)
  echo "$mod: $killed killed of $total mutants ($survived survived; the rest: timeouts, no tests, suspicious)," \
       "$(( $(date +%s) - start )) s; not killed: $OUT/$mod.txt" | tee -a "$OUT/summary.txt"
  rm -rf "$work"
done
echo "reports: $OUT"
