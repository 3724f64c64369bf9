# Site settings of every job in slurm/ (finetune, index, merge, compare): the ONE file to adapt to a cluster.
# Each job sources it (through slurm/lib.sh) from the repository root, the folder sbatch was run from.
#
# Partition, account, QOS: #SBATCH lines cannot read variables, so give them when submitting, on the command
# line or in the environment (sbatch reads the SBATCH_* variables itself), e.g. once in ~/.bashrc:
#   export SBATCH_PARTITION=gpu SBATCH_ACCOUNT=meuprojeto SBATCH_QOS=normal
#   sbatch --partition=gpu --account=meuprojeto slurm/finetune.sbatch        # or per job
#
# Modules and Python: a venv with the CUDA build of torch and llama-cpp-python (`make setup-gpu`, run once on
# a login node after loading the same modules; docs/estudo.md, "Compilação para GPU").
SITE_MODULES=${SITE_MODULES-}            # e.g. SITE_MODULES="cuda/12.8 python/3.11" (module purge; module load ...)
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$VENV/bin/python}

# Compute nodes often have no internet: download the models once on a login node (`python models/baixar.py`
# writes them under models/, the paths the configs read) and read them offline here.
export HF_HOME=${HF_HOME:-$PWD/.hf}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ -n "$SITE_MODULES" ]; then
    if [ "${DRY_RUN:-0}" = 1 ]; then
        echo "module purge; module load $SITE_MODULES"
    else
        set +u                           # some module systems (Lmod, environment-modules) read unset variables
        module purge
        # shellcheck disable=SC2086  # a list of modules
        module load $SITE_MODULES
        set -u
    fi
fi
export PATH="$PWD/$VENV/bin:$PATH"       # accelerate and the venv's python come first
