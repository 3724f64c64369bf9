"""Generator.generate_batch: a left-padded batch gives the same greedy answers as one prompt at a time."""

from __future__ import annotations

import pytest

from llamawiki import models, prompt

QUESTIONS = [
    "Qual é a capital do Brasil?",
    "Quem foi Tiradentes?",
    "Quando foi abolida a escravidão no Brasil?",
    "Qual?",
    "Dom Pedro I proclamou a independência do Brasil em que dia, mês e ano exatamente?",
]


@pytest.fixture(scope="module")
def generator(tiny_llama):
    return models.load_generator({"backend": "transformers", "model": str(tiny_llama)})


def test_greedy_batch_equals_one_at_a_time(generator):
    prompts = [prompt.build_prompt(q) for q in QUESTIONS]  # different lengths: the batch is left-padded
    one = [generator.generate(p, max_new_tokens=24) for p in prompts]
    batch = generator.generate_batch(prompts, max_new_tokens=24)
    assert [g.text for g in batch] == [g.text for g in one]
    assert [g.n_tokens for g in batch] == [g.n_tokens for g in one]
    assert [g.finish_reason for g in batch] == [g.finish_reason for g in one]
    assert [g.prompt_tokens for g in batch] == [g.prompt_tokens for g in one]
    assert len({g.text for g in batch}) > 1  # the prompts really produced different answers


def test_batch_honours_stop_strings(generator):
    prompts = [prompt.build_prompt(q) for q in QUESTIONS[:3]]
    free = generator.generate_batch(prompts, max_new_tokens=16, stop=[])
    # a stop string taken from inside each free answer cuts it there, as generate() does
    stops = [g.text[3:6] for g in free if len(g.text) > 8]
    assert stops
    cut = generator.generate_batch(prompts, max_new_tokens=16, stop=stops[:1])
    single = [generator.generate(p, max_new_tokens=16, stop=stops[:1]) for p in prompts]
    assert [g.text for g in cut] == [g.text for g in single]
    assert any(g.finish_reason == "stop" for g in cut)


def test_default_generate_batch_is_one_at_a_time():
    class Echo(models.Generator):
        def generate(self, prompt, *a, **k):
            return models.Generation(text=prompt.upper())

    assert [g.text for g in Echo().generate_batch(["a", "b"])] == ["A", "B"]


def test_compare_with_batch_size_gives_the_answers_of_one_at_a_time(tiny_llama, tmp_path):
    import csv

    from llamawiki import evaluation as ev

    questions = tmp_path / "q.csv"
    with open(questions, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "pergunta", "resposta_referencia"])
        w.writerows([(str(i), q, "x") for i, q in enumerate(QUESTIONS, 1)])
    cfg = {
        "generation": {"max_new_tokens": 12},
        "models": {"tiny": {"backend": "transformers", "model": str(tiny_llama)}},
        "systems": {"base": {"model": "tiny"}},
    }
    loads = []

    def load(spec):
        loads.append(spec)
        return models.load_generator(spec)

    one = ev.run_comparison(
        cfg, questions_path=questions, run_dir=tmp_path / "one", progress=False, load_generator=load
    )
    batched = ev.run_comparison(
        {**cfg, "generation": {"max_new_tokens": 12, "batch_size": 4}},
        questions_path=questions,
        run_dir=tmp_path / "batch",
        progress=False,
        load_generator=load,
    )
    assert batched.generated == len(QUESTIONS) == one.generated
    texts = lambda r: [r.answers[("base", str(i))]["answer"] for i in range(1, len(QUESTIONS) + 1)]  # noqa: E731
    assert texts(batched) == texts(one)
