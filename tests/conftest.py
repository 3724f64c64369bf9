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

SHARED = ROOT.parent / "shared" / "reference" / "original-study"
SAMPLE_DUMP = ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2"


@pytest.fixture(scope="session", autouse=True)
def _hf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_DATASETS_CACHE"] = str(home / "datasets")
    yield home


@pytest.fixture(scope="session")
def shared_study() -> Path:
    """The original study's data files (../shared/reference/original-study), or skip."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data not found at {SHARED}")
    return SHARED


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
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
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
