"""The study's own settings (issue 13): its prompt template, the pad=eos defect as an option, per-system
generation settings in compare configs."""

from __future__ import annotations

import json

import pytest
from test_compare import make_env

from llamawiki import evaluation as ev
from llamawiki import prompt
from llamawiki.fileio import UserError


def test_the_study_template_verbatim():
    text = prompt.build_example("Qual a capital do Brasil?", "Brasília.", template="estudo")
    assert text == (
        "### Instruction: Utilize a Question fornecida para gerar uma Answer sucinta em português, que "
        "consiste em uma Answer fundamentada apartir de todo o seu conhecimento sobre a Question, caso "
        "nao saiba a resposta, nao gere novas perguntas e responda: nao sei a resposta \n"
        "### Question: Qual a capital do Brasil?\n ### Answer: Brasília."
    )
    rag = prompt.build_prompt("Qual a capital?", context="Brasília é a capital.", template="estudo")
    assert rag.startswith("Use the following pieces of context") and rag.endswith(
        "Question: Qual a capital?\nHelpful Answer:"
    )
    assert prompt.split_response("Brasília.\n### Question: e agora?", "estudo") == "Brasília."
    with pytest.raises(UserError, match="unknown template 'x'"):
        prompt.build_prompt("q", template="x")


def test_training_examples_follow_the_config_template(tmp_path):
    from llamawiki.training import read_examples

    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"instruction": "i", "input": "Qual a capital?", "output": "Brasília."}) + "\n")
    (ex,) = read_examples(path, "estudo")
    assert ex["prompt"].endswith("### Question: Qual a capital?\n ### Answer: ") and ex["completion"] == "Brasília."
    (ex,) = read_examples(path)
    assert ex["prompt"].endswith("### Response:\n")


def test_learn_eos_false_masks_every_eos_label():
    import torch

    from llamawiki.training import MaskToken

    inner = lambda feats: {"labels": torch.tensor([[5, 6, 2, -100], [7, 2, 2, 2]])}  # noqa: E731
    labels = MaskToken(inner, 2)([{}, {}])["labels"]
    assert labels.tolist() == [[5, 6, -100, -100], [7, -100, -100, -100]]


def test_lm_head_lora_target_is_one_clear_line():
    from llamawiki.training import lora_config

    with pytest.raises(UserError, match="cannot train a LoRA on lm_head"):
        lora_config({"lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "lm_head"]}})


def test_systems_keep_their_own_prompt_and_generation_settings(tmp_path):
    cfg, questions = make_env(tmp_path)
    cfg["generation"] = {"max_new_tokens": 16, "repeat_penalty": 1.1}
    cfg["systems"]["finetuned"] = {
        "model": "tiny+lora",
        "prompt": "estudo",
        "generation": {"temperature": 0.01, "top_k": 50, "repeat_penalty": None},
    }
    seen = []

    class Recorder:
        def __init__(self, spec):
            self.spec = spec

        def generate(self, text, **gen):
            seen.append((self.spec.get("adapter") is not None, text, gen))
            return type("G", (), {"text": "Brasília.", "n_tokens": 2, "seconds": 0.1, "prompt_tokens": 9})()

    ev.run_comparison(
        cfg,
        questions_path=questions,
        run_dir=tmp_path / "run",
        progress=False,
        load_generator=Recorder,
        systems=["base", "finetuned"],
    )
    base = [g for ft, _, g in seen if not ft]
    tuned = [(t, g) for ft, t, g in seen if ft]
    assert base[0]["repeat_penalty"] == 1.1 and "top_k" not in base[0] and base[0]["temperature"] == 0.0
    text, gen = tuned[0]
    assert text.startswith("### Instruction: Utilize a Question") and gen["stop"] == prompt.ESTUDO_STOP_STRINGS
    assert gen["top_k"] == 50 and gen["temperature"] == 0.01 and "repeat_penalty" not in gen
    lines = [json.loads(x) for x in (tmp_path / "run" / "respostas.jsonl").read_text().splitlines()]
    assert {r["system"]: r["generation"].get("top_k") for r in lines} == {"base": None, "finetuned": 50}


def test_unknown_system_key_is_refused(tmp_path):
    cfg, _ = make_env(tmp_path)
    cfg["systems"]["base"] = {"model": "tiny", "promt": "estudo"}
    with pytest.raises(UserError, match=r"system 'base': unknown key\(s\) \['promt'\]"):
        ev.resolve_systems(cfg, ["base"])


class _Retriever:
    """A LangChain-style retriever with one fixed chunk."""

    def invoke(self, question):
        from langchain_core.documents import Document

        return [
            Document(
                page_content="Lei Áurea — Introdução\nA Lei Áurea foi assinada em 1888.",
                metadata={"title": "Lei Áurea", "section": "Introdução", "source": "u"},
            )
        ]


class _Gen:
    def __init__(self):
        self.calls = []

    def generate(self, prompt_text, **kw):
        self.calls.append((prompt_text, kw))
        from types import SimpleNamespace

        return SimpleNamespace(text="Em 1888.\n### Question: outra", n_tokens=3, seconds=0.1, prompt_tokens=9)


def test_rag_with_the_study_prompt_uses_langchains_english_qa_prompt_and_its_stops():
    from llamawiki import retrieval

    gen = _Gen()
    res = retrieval.answer(
        "Quando foi assinada a Lei Áurea?", _Retriever(), gen, k=1, template="estudo", max_new_tokens=20
    )
    sent, kw = gen.calls[0]
    assert "Helpful Answer:" in sent and "A Lei Áurea foi assinada em 1888." in sent
    assert "### Response:" not in sent
    assert kw["stop"] == prompt.stop_strings("estudo")
    assert res.text == "Em 1888."
    alpaca = _Gen()
    retrieval.answer("Quando foi assinada a Lei Áurea?", _Retriever(), alpaca, k=1, max_new_tokens=20)
    assert "### Response:" in alpaca.calls[0][0] and "Helpful Answer:" not in alpaca.calls[0][0]
    with pytest.raises(UserError, match="unknown template"):
        retrieval.answer("Quando?", _Retriever(), gen, k=1, template="llama")
