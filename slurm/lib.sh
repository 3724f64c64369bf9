# Helpers of the jobs in slurm/, sourced by each one from the repository root: DRY_RUN, one-line errors, the GPU
# count, the dump's inputs. The site's settings (modules, venv, offline caches) are in slurm/site.sh.
set -euo pipefail
DRY_RUN=${DRY_RUN:-0}                    # DRY_RUN=1: print every command, run none
# shellcheck source=slurm/site.sh
source slurm/site.sh

die() { echo "error: $*" >&2; exit 2; }

show() { local s; s=$(printf '%q ' "$@"); echo "${s% }"; }
run() { show "$@"; if [ "$DRY_RUN" != 1 ]; then "$@"; fi; }

# GPUS (and GPUS_FROM, where the number came from): NUM_GPUS if given, else what SLURM allotted
# (SLURM_GPUS_ON_NODE), else the devices in CUDA_VISIBLE_DEVICES, else nvidia-smi's list, else 0.
count_gpus() {
    if [ -n "${NUM_GPUS:-}" ]; then
        GPUS=$NUM_GPUS GPUS_FROM=NUM_GPUS
    elif [ -n "${SLURM_GPUS_ON_NODE:-}" ]; then
        GPUS=$SLURM_GPUS_ON_NODE GPUS_FROM=SLURM_GPUS_ON_NODE
    elif [ -n "${CUDA_VISIBLE_DEVICES+set}" ]; then
        local d devices
        GPUS=0 GPUS_FROM=CUDA_VISIBLE_DEVICES
        IFS=, read -ra devices <<< "$CUDA_VISIBLE_DEVICES"
        for d in "${devices[@]}"; do
            case $d in ''|-1|NoDevFiles) ;; *) GPUS=$((GPUS + 1)) ;; esac
        done
    elif command -v nvidia-smi > /dev/null 2>&1; then
        GPUS=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true) GPUS_FROM=nvidia-smi
    else
        GPUS=0 GPUS_FROM="no SLURM_GPUS_ON_NODE, CUDA_VISIBLE_DEVICES or nvidia-smi"
    fi
    [[ $GPUS =~ ^[0-9]+$ ]] || die "$GPUS_FROM=$GPUS: not a number of GPUs"
    # a dry run on a login node (no GPU there): the count the job asks for in its #SBATCH --gres line
    local asked
    asked=$(sed -n 's/^#SBATCH --gres=gpu:\([0-9][0-9]*\).*/\1/p' "$0" | head -n 1)
    if [ "$GPUS" = 0 ] && [ "$DRY_RUN" = 1 ] && [ -n "$asked" ]; then
        GPUS=$asked GPUS_FROM="#SBATCH --gres, as none is visible here"
    fi
}

# The dump in DUMP_DIR, one of two layouts, never both (the articles would be indexed twice):
#   parts:       Wikimedia's parts, *pages-articles*.xml-p*p*.bz2 (one array task per file; NPARTS = their number)
#   multistream: the single *pages-articles-multistream.xml.bz2 with its -index.txt.bz2 beside it, split into
#                PARTS parts on its bzip2 streams (slurm/split_multistream.py, one part per array task)
# Sets DUMP_MODE, NPARTS, DUMP_PARTS (parts) or MULTISTREAM and MULTISTREAM_INDEX (multistream).
find_dump() {
    local dir=$DUMP_DIR parts multi
    [ -d "$dir" ] || die "$dir: dump folder not found (set DUMP_DIR)"
    shopt -s nullglob
    parts=("$dir"/*pages-articles*.xml-p*p*.bz2)
    multi=("$dir"/*pages-articles-multistream.xml.bz2)
    shopt -u nullglob
    if [ ${#parts[@]} -gt 0 ] && [ ${#multi[@]} -gt 0 ]; then
        die "$dir: both dump parts (${#parts[@]} files, $(basename "${parts[0]}") ...) and the multistream dump" \
            "$(basename "${multi[0]}"): the articles would be indexed twice; move one of the two out"
    fi
    if [ ${#parts[@]} -gt 0 ]; then
        DUMP_MODE=parts
        mapfile -t DUMP_PARTS < <(printf '%s\n' "${parts[@]}" | sort -V)
        NPARTS=${#DUMP_PARTS[@]}
    elif [ ${#multi[@]} -gt 1 ]; then
        die "$dir: ${#multi[@]} multistream dumps ($(basename "${multi[0]}"), $(basename "${multi[1]}") ...): keep one"
    elif [ ${#multi[@]} -eq 1 ]; then
        DUMP_MODE=multistream
        MULTISTREAM=${multi[0]}
        MULTISTREAM_INDEX=${MULTISTREAM%.xml.bz2}-index.txt.bz2
        [ -f "$MULTISTREAM_INDEX" ] || die "$MULTISTREAM_INDEX: not found: the multistream dump needs its index" \
            "beside it (gives the stream offsets to split on)"
        [[ ${PARTS:-} =~ ^[1-9][0-9]*$ ]] || die "$MULTISTREAM: set PARTS=<n>, how many parts to split it into" \
            "(the same in index.sbatch, whose array is 0..n-1, and merge.sbatch), not '${PARTS:-}'"
        NPARTS=$PARTS
    else
        die "$dir: no dump: neither parts (*pages-articles*.xml-p*p*.bz2) nor a multistream dump" \
            "(*pages-articles-multistream.xml.bz2)"
    fi
}

# The dump file that array task $1 indexes (multistream: the part slurm/split_multistream.py writes; the same
# name as llamawiki.multistream.part_name).
part_input() {
    if [ "$DUMP_MODE" = parts ]; then
        echo "${DUMP_PARTS[$1]}"
    else
        local base
        base=$(basename "$MULTISTREAM" .xml.bz2)
        printf '%s/%s-part%02dof%02d.xml.bz2\n' "$SPLIT_DIR" "$base" "$1" "$NPARTS"
    fi
}

part_index_dir() { echo "$PARTS_DIR/$(basename "$(part_input "$1")" .bz2)"; }
