"""Shared fixtures. The tiny random Llama is built once per session, offline, in a few seconds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Never reach a hub; keep caches out of the user's home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = ROOT.parent / "shared" / "reference" / "original-study"  # developers' machines only; tests may read it
STUDY_DIR = ROOT / "data" / "estudo"  # python data/estudo/baixar.py puts them here
SAMPLE_DUMP = ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2"


@pytest.fixture(scope="session", autouse=True)
def _hf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_DATASETS_CACHE"] = str(home / "datasets")
    yield home


@pytest.fixture(scope="session")
def real_study() -> Path:
    """The original study's own files: data/estudo/ (python data/estudo/baixar.py), else the developers' copy
    in ../shared/reference/original-study; skip when neither has all of them."""
    from llamawiki.downloads import missing_study_files

    for folder in (STUDY_DIR, SHARED):
        if folder.is_dir() and not missing_study_files(folder):
            return folder
    pytest.skip(f"the study's files are not in {STUDY_DIR} (download them: python data/estudo/baixar.py)")


@pytest.fixture(scope="session")
def shared_study(real_study) -> Path:
    """Older name of ``real_study``."""
    return real_study


# ---- small files in the study's formats (tests of the formats never skip) ----------------------------------------
# dados.csv: `pergunta;resposta`, no header, cp1252/Latin-1, CRLF; saida.json/treino.json/teste.json: a JSON list of
# {"input", "output"} without accents, 4-space indent, no final newline; resposta_*.txt: Latin-1 blocks
# "Pergunta: ..." / "Resposta: ..." whose answers span lines. Written here, not copied from the study.
STUDY_PAIRS = [
    ("Em que ano os portugueses chegaram ao litoral da Bahia?", "Os portugueses chegaram ao litoral da Bahia em 1500."),
    ("Qual árvore deu nome ao Brasil?", "O nome vem do pau-brasil, árvore de madeira avermelhada."),
    ("Quem foi o primeiro governador-geral do Brasil?", "Tomé de Sousa foi o primeiro governador-geral, em 1549."),
    ("Qual cidade foi a primeira capital do Brasil?", "Salvador foi a primeira capital do Brasil."),
    (
        "Em que ano a capital passou para o Rio de Janeiro?",
        "A capital passou de Salvador para o Rio de Janeiro em 1763.",
    ),
    ("Qual produto sustentou a economia colonial no século XVI?", "O açúcar produzido nos engenhos do Nordeste."),
    ("O que foi a Inconfidência Mineira?", "Uma conspiração contra a Coroa portuguesa em Minas Gerais, em 1789."),
    ("Quem foi Tiradentes?", "Joaquim José da Silva Xavier, o alferes enforcado em 1792."),
    (
        "Quando a família real portuguesa chegou ao Brasil?",
        "A família real chegou ao Brasil em 1808 – fugindo de Napoleão.",
    ),
    ("Quem proclamou a independência do Brasil?", "Dom Pedro I, às margens do riacho Ipiranga."),
    ("Quando foi proclamada a independência do Brasil?", "Em 7 de setembro de 1822."),
    ("O que foi a Lei Áurea?", "A lei de 13 de maio de 1888, assinada pela princesa Isabel, que aboliu a escravidão."),
    ("Quando foi proclamada a República no Brasil?", "Em 15 de novembro de 1889, pelo marechal Deodoro da Fonseca."),
    ("Qual foi o lema da Força Expedicionária Brasileira?", 'O lema "A Cobra Vai Fumar".'),
    (
        "Em que ano Brasília foi inaugurada?",
        "Brasília foi inaugurada em 21 de abril de 1960 – por Juscelino Kubitschek.",
    ),
    ("Quem criou o Plano Real?", "O governo de Itamar Franco, em 1994."),
    ("Qual é o 1º artigo da Constituição de 1988?", "Define o Brasil como República Federativa."),
    ("Qual era o nome dado pelos indígenas à terra?", "Pindorama, a terra das palmeiras."),
    ("Em que ano a capital foi transferida para o Rio de Janeiro?", "Em 1763 a capital foi para o Rio de Janeiro."),
    ("Quem foi o primeiro governador-geral do Brasil?", "Foi Tomé de Sousa, que fundou Salvador."),
]
STUDY_N_TRAIN = (
    18  # treino.json: the first 18 pairs; teste.json: the last 2 (one repeats, one rewords a train question)
)

STUDY_QUESTIONS = [  # the answer files' questions (the first four of the study's 19)
    "Qual a capital do Brasil?",
    "Qual era o nome do país antes de ser chamado de Brasil?",
    "Quando foi proclamada a independência do Brasil?",
    "Quando foi assinada a primeira Constituição brasileira?",
]
STUDY_ANSWERS = {
    "resposta_llama_simples.txt": [
        "\n\nExpected Output: A capital do Brasil é Brasília.",
        "\n\nResposta esperada: Ilha de Vera Cruz.\n\nExplicação: foi o primeiro nome.",
        " A independência foi proclamada em 1822.",
        " A primeira Constituição é de 1824.",
    ],
    "resposta_rga.txt": [
        "  The capital of Brazil is Brasília.",
        "  Não é possível responder com base no contexto.",
        "  A independência do Brasil foi proclamada em 1822.",
        (
            "  I cannot answer: the text does not say.\n\n==== Context ====\n\n* A Constituição de 1824 foi outorgada."
            "\n* Pergunta: não é um bloco, está no meio da linha."
        ),
    ],
    "resposta_fine.txt": [
        " ### Answer: Qual a capital do Brasil?\n\nResposta: A capital do Brasil é Brasília.### ",
        " ### Answer: O nome era Terra de Vera Cruz.",
        " ### Answer: Em 7 de setembro de 1822.",
        " ### Answer: Em 1824, outorgada por Dom Pedro I.",
    ],
}


def _no_accents(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).replace("º", "o")


def write_study_files(folder: Path) -> Path:
    """Write the seven files of data/estudo/, small, in the study's formats; returns ``folder``."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{q};{a}\r\n" for q, a in STUDY_PAIRS)
    (folder / "dados.csv").write_bytes(rows.encode("cp1252"))
    pairs = [{"input": _no_accents(q), "output": _no_accents(a)} for q, a in STUDY_PAIRS]
    for name, part in (
        ("saida.json", pairs),
        ("treino.json", pairs[:STUDY_N_TRAIN]),
        ("teste.json", pairs[STUDY_N_TRAIN:]),
    ):
        (folder / name).write_bytes(json.dumps(part, indent=4).encode("ascii"))
    for name, answers in STUDY_ANSWERS.items():
        text = "".join(f"Pergunta: {q}\nResposta:{a}\n\n" for q, a in zip(STUDY_QUESTIONS, answers, strict=True))
        (folder / name).write_bytes(text.encode("latin-1"))
    return folder


@pytest.fixture(scope="session")
def study_fixture(tmp_path_factory) -> Path:
    """A folder with the study's seven files in its formats, small and written by the tests (never skips)."""
    return write_study_files(tmp_path_factory.mktemp("estudo"))


@pytest.fixture(scope="session")
def sample_dump() -> Path:
    if not SAMPLE_DUMP.exists():
        pytest.skip(f"embedded sample dump missing: {SAMPLE_DUMP}")
    return SAMPLE_DUMP


TOKENIZER_CORPUS = [
    "Abaixo está uma instrução que descreve uma tarefa, emparelhada com uma entrada que fornece mais contexto.",
    "Escreva uma resposta que complete adequadamente o pedido.",
    "### Instruction:\nResponda à pergunta a seguir em português, de forma curta e correta.",
    "### Input:\nQual é a capital do Brasil?\n\n### Response:\nA capital do Brasil é Brasília.",
    "Quem foi Tiradentes? Joaquim José da Silva Xavier foi um dentista e líder da Inconfidência Mineira.",
    "A Lei Áurea aboliu a escravidão no Brasil em 13 de maio de 1888.",
    "Dom Pedro I proclamou a independência do Brasil em 7 de setembro de 1822.",
    "Contexto: Pergunta: Resposta: Não sei com base no contexto.",
]


def build_tiny_llama(out: Path) -> Path:
    """A random LlamaForCausalLM (hidden 64, 2 layers) with a byte-level BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TOKENIZER_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.model_max_length = 512
    fast.save_pretrained(out)

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """Path of a saved tiny random Llama + tokenizer folder (HF format)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def pytest_configure(config):
    """Under pytest-xdist, each worker (and every process it starts) runs on a core of its own.

    torch, OpenMP and llama.cpp size their thread pools by the cores a process may use: unpinned, two workers on a
    2-core machine each start 2 busy-waiting threads per model, and the suite spends a third of its CPU time
    spinning (a 1-step demo training: 75 s of CPU unpinned, 43 s on one thread, measured on the dev machine).
    Pinned, each worker's children see one core and size their pools to it. Without xdist nothing changes."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if count < 2 or len(cores) < count:
        return
    per = len(cores) // count
    n = int(worker[2:])
    os.sched_setaffinity(0, set(cores[n * per : (n + 1) * per]))
    if "torch" in sys.modules:  # its pool may already be sized for every core
        sys.modules["torch"].set_num_threads(per)


# The order make test hands files to its two workers (pytest-xdist --dist loadfile --no-loadscope-reorder: a file
# runs whole on one worker, and the next file in this order goes to the first worker that is free). The first
# rehearsal chain starts at once on one worker; the other works through the longest files meanwhile (a few
# minutes, about the time the README's blocks take), then takes the second chain, which starts from the first's
# copy of the README state (test_ensaio_docs.py); the rest goes to whichever worker is free.
FIRST = ["tests/test_ensaio.py"]
WHILE_THE_README_RUNS = [
    "tests/test_gpu_check.py",
    "tests/test_finetune_safety.py",
    "tests/test_slurm.py",
    "tests/test_models.py",
]
THEN = ["tests/test_ensaio_docs.py"]


def pytest_collection_modifyitems(config, items):
    order = {f: n for n, f in enumerate([*FIRST, *WHILE_THE_README_RUNS, *THEN])}
    items.sort(key=lambda item: order.get(item.nodeid.split("::")[0], len(order)))
