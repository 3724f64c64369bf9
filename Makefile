# llamawiki — the two commands of the README: `make demo` and `make test`.
# Every target installs what it needs into .venv first. File targets make `make demo` skip stages whose
# outputs are already up to date.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

DUMP    := data/ptwiki-amostra-pages-articles.xml.bz2
GGUF    := models/gemma-3-270m-q4_k_m.gguf
HFMODEL := models/gemma-3-270m-hf
ADAPTER := models/lora-demo
INDEX   := indexes/amostra
RESULTS := results/demo

.PHONY: setup setup-gpu test lint demo models dataset split finetune index compare avaliacao estudo-demo clean-outputs
.PHONY: referencia
.PHONY: estudo-dados modelos-estudo
.DELETE_ON_ERROR:

# llama-cpp-python ships only an sdist. Its default build is -march=native, and on some virtual machines the CPU
# advertises instructions (AVX-512 FP16 and others) that then trap: every llama.cpp call dies with "Illegal
# instruction". So it is built once per machine with a portable x86-64 AVX2 set, into a wheel folder keyed by
# its version and flags, instead of pip's cache (which would hand back a wheel built elsewhere).
# GPU cluster: make setup-gpu (below).
LLAMA_CPP        := $(shell grep -E '^llama-cpp-python==' requirements.txt)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_WHEELS     := $(HOME)/.cache/llamawiki/wheels/$(shell echo '$(LLAMA_CPP) $(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)
PIP              := $(PY) -m pip install --disable-pip-version-check -q

setup: $(STAMP)
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -n "$$(ls $(LLAMA_WHEELS)/*.whl 2>/dev/null)" || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
	  $(PY) -m pip wheel --disable-pip-version-check -q --no-cache-dir --no-deps "$(LLAMA_CPP)" -w $(LLAMA_WHEELS)
	$(PIP) --no-deps --force-reinstall $(LLAMA_WHEELS)/*.whl
	$(PIP) -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

# ---- GPU cluster: the CUDA builds (never in CI, which has no GPU; `make -n setup-gpu` prints the commands) ----
# Run once on a login node, after loading the site's CUDA and Python modules (slurm/site.sh). It installs the CUDA
# build of the SAME torch as requirements.txt from PyTorch's index for CUDA_TAG (cu128 = CUDA 12.8 wheels, which
# need an NVIDIA driver >= 570; older drivers: CUDA_TAG=cu126; the tags: https://pytorch.org/get-started/locally/),
# and builds llama-cpp-python with CUDA (configs/compare-estudo.yaml runs llama.cpp with n_gpu_layers: -1) into its
# own wheel folder, keyed by its flags like the CPU one. LLAMA_CUDA_ARCHS: the GPUs to compile for (80 = A100,
# 90 = H100/H200); the login node needs nvcc, not a GPU. torch is asked as X+cu128 (the local version label), so
# pip replaces a CPU build X+cpu already there; requirements.txt's torch==X is then met by X+cu128.
CUDA_TAG          ?= cu128
TORCH_INDEX       ?= https://download.pytorch.org/whl/$(CUDA_TAG)
TORCH             := $(shell grep -E '^torch==' requirements.txt)
LLAMA_CUDA_ARCHS  ?= 80;90
LLAMA_CUDA_CMAKE_ARGS ?= $(LLAMA_CMAKE_ARGS) -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$(LLAMA_CUDA_ARCHS)
LLAMA_CUDA_WHEELS := $(HOME)/.cache/llamawiki/wheels/$(shell echo '$(LLAMA_CPP) $(LLAMA_CUDA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

setup-gpu:
	@command -v nvcc > /dev/null || { echo "error: setup-gpu: nvcc not found: load the CUDA module first (module load cuda)" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH)+$(CUDA_TAG)" --index-url $(TORCH_INDEX)
	test -n "$$(ls $(LLAMA_CUDA_WHEELS)/*.whl 2>/dev/null)" || CMAKE_ARGS="$(LLAMA_CUDA_CMAKE_ARGS)" \
	  $(PY) -m pip wheel --disable-pip-version-check -q --no-cache-dir --no-deps "$(LLAMA_CPP)" -w $(LLAMA_CUDA_WHEELS)
	$(PIP) --no-deps --force-reinstall $(LLAMA_CUDA_WHEELS)/*.whl
	$(PIP) -r requirements.txt
	$(PY) -c "import torch; assert torch.version.cuda, 'torch ' + torch.__version__ + ' is not a CUDA build'; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# make test = make lint, then the suite in two processes (pytest-xdist, one test file per worker at a time): the
# rehearsal of the documented commands (tests/test_ensaio.py, in order on one worker) runs beside the other tests.
test: lint
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests

# ruff: the rules and line length are in pyproject.toml; `ruff format` fixes what format --check reports.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# ---- the study's pipeline on the embedded sample (each stage's output is the next one's input) ----
models: $(GGUF) $(HFMODEL)/config.json
$(GGUF): | setup
	$(PY) models/get_embedded.py --gguf $@
$(HFMODEL)/config.json: $(GGUF)
	$(PY) models/get_embedded.py --gguf $(GGUF) --hf $(HFMODEL)

dataset: json/dataset.jsonl
json/dataset.jsonl: $(DUMP) $(STAMP)
	$(PY) build_dataset.py $(DUMP) --output $@

split: json/treino.jsonl
json/treino.jsonl json/teste.jsonl &: json/dataset.jsonl
	$(PY) particiona.py json/dataset.jsonl --train json/treino.jsonl --test json/teste.jsonl

finetune: $(ADAPTER)/adapter_config.json
$(ADAPTER)/adapter_config.json: json/treino.jsonl json/teste.jsonl $(HFMODEL)/config.json configs/demo.yaml
	$(PY) finetune.py --config configs/demo.yaml --output-dir $(ADAPTER) --overwrite

index: $(INDEX)/manifest.json
$(INDEX)/manifest.json: $(DUMP) $(STAMP)
	$(PY) rag.py index $(DUMP) --index-dir $(INDEX)
	@touch $@  # also when rag.py found it up to date: make then stops asking

# the code a table is computed by: a change to it re-renders both tables
TABLE_SRC := compare.py llamawiki/evaluation.py llamawiki/metrics.py llamawiki/acerto.py llamawiki/answer_parse.py llamawiki/pasted.py llamawiki/matching.py
compare: $(RESULTS)/tabela.md
$(RESULTS)/tabela.md: $(GGUF) $(TABLE_SRC) $(ADAPTER)/adapter_config.json $(INDEX)/manifest.json data/perguntas.csv configs/compare-demo.yaml
	$(PY) compare.py --config configs/compare-demo.yaml --run-dir $(RESULTS)

demo: compare
	@echo "Tabela: $(RESULTS)/tabela.md  (métricas: $(RESULTS)/metricas.csv, gráfico: $(RESULTS)/metricas.png)"
	@$(PY) -m llamawiki.reference diff $(RESULTS)

# The larger, held-out question set about the sample's articles (212 questions; ~30 min on 2 cores, resumable:
# answers are cached in results/avaliacao/respostas.jsonl, so an interrupted run continues where it stopped).
# make avaliacao SEEDS="1 2 3": also trains one adapter per seed (models/lora-demo-s<seed>; an adapter already
# trained with the same config is kept), answers the questions with finetuned and rag+finetuned on each
# (results/avaliacao/sementes/s<seed>/, resumable) and writes how acerto spreads across the seeds:
# results/avaliacao/sementes.csv and a section of its tabela.md (how much of a difference is seed noise).
AVALIACAO := results/avaliacao
SEEDS     ?=
avaliacao: $(AVALIACAO)/tabela.md
	@$(foreach s,$(SEEDS),$(PY) finetune.py --config configs/demo.yaml --set seed=$(s) --output-dir $(ADAPTER)-s$(s) && \
	  $(PY) compare.py --config configs/compare-demo.yaml --questions data/perguntas-amostra.csv \
	    --systems finetuned,rag+finetuned --adapter $(ADAPTER)-s$(s) --run-dir $(AVALIACAO)/sementes/s$(s) && ) true
	$(if $(strip $(SEEDS)),$(PY) -m llamawiki.reference seeds $(AVALIACAO) $(foreach s,$(SEEDS),$(AVALIACAO)/sementes/s$(s)))
	@$(PY) -m llamawiki.reference diff $(AVALIACAO)
$(AVALIACAO)/tabela.md: $(GGUF) $(TABLE_SRC) $(ADAPTER)/adapter_config.json $(INDEX)/manifest.json data/perguntas-amostra.csv configs/compare-demo.yaml
	$(PY) compare.py --config configs/compare-demo.yaml --questions data/perguntas-amostra.csv --run-dir $(AVALIACAO)
	@echo "Tabela: $@"

# The committed reference run the README's numbers are generated from (results/referencia/, in git): saves the
# finished runs of results/demo and results/avaliacao (a missing or unfinished one: a warning, its old reference
# kept) with their origin (commit, machine, versions), then rewrites README.md's generated sections. Commit both.
referencia: | setup
	$(PY) -m llamawiki.reference save $(RESULTS) $(AVALIACAO) --allow-missing --command-line "make referencia"
	$(PY) -m llamawiki.reference readme

# The study as it was run (its prompt, hyperparameters and generation settings), at demo size on the CPU.
ESTUDO_INDEX := indexes/amostra-estudo
estudo-demo: $(GGUF) $(HFMODEL)/config.json json/treino.jsonl
	$(PY) finetune.py --config configs/estudo-demo.yaml --overwrite
	test -f $(ESTUDO_INDEX)/manifest.json || $(PY) rag.py index $(DUMP) --index-dir $(ESTUDO_INDEX) --chunk-size 10000 --chunk-overlap 20
	$(PY) compare.py --config configs/compare-estudo-demo.yaml --run-dir results/estudo-demo

# Downloads (network): the study's files into data/estudo/ (pinned commit, sha256) and the Llama 2 13B models of
# configs/*.yaml into models/ (~41 GB, pinned revisions; `python models/baixar.py --dry-run` shows the plan).
estudo-dados: | setup
	$(PY) data/estudo/baixar.py
modelos-estudo: | setup
	HF_HUB_OFFLINE=0 $(PY) models/baixar.py

clean-outputs:
	rm -rf json/*.jsonl $(INDEX) $(RESULTS) $(AVALIACAO) $(ADAPTER)
