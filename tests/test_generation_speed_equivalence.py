"""The transformers Generator reads its answers from one plain ``model.generate`` (stop strings matched on the
token ids by transformers' StopStringCriteria, text decoded once): its greedy answers must be bare generate's
decoded text cut at the first stop string, single, batched and streamed, with the right token counts."""

from __future__ import annotations

import pytest

from llamawiki import models, prompt

QUESTIONS = [
    "Qual é a capital do Brasil?",
    "Quem foi Tiradentes?",
    "Quando foi abolida a escravidão no Brasil?",
    "Dom Pedro I proclamou a independência do Brasil em que dia, mês e ano exatamente?",
]
N = 24
NEVER = "§nunca aparece§"


@pytest.fixture(scope="module")
def generator(tiny_llama):
    return models.load_transformers(tiny_llama)


@pytest.fixture(scope="module")
def bare(generator):
    """Bare greedy ``model.generate`` per prompt: (prompt, answer ids)."""
    import torch

    tok, model = generator.tokenizer, generator.model
    out = []
    for q in QUESTIONS:
        p = prompt.build_prompt(q)
        ids = tok(p, return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(
                **ids,
                max_new_tokens=N,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
            )
        out.append((p, gen[0, ids["input_ids"].shape[1] :].tolist()))
    return out


def cut(text: str, stops: list[str]) -> tuple[str, bool]:
    i = min((j for j in (text.find(s) for s in stops) if j != -1), default=-1)
    return (text, False) if i == -1 else (text[:i], True)


def expected(generator, new: list[int], stops: list[str]):
    """(text, n_tokens, finish_reason) from bare generate's ids: cut at eos, at the first token that completes a
    stop string (the tokens generate() would have made), and the text at the first stop string."""
    tok = generator.tokenizer
    eos = generator.model.generation_config.eos_token_id
    ended = next((j for j, t in enumerate(new) if t == eos), None)
    if ended is not None:
        new = new[: ended + 1]
    m = next(
        (k for k in range(1, len(new) + 1) if cut(tok.decode(new[:k], skip_special_tokens=True), stops)[1]), len(new)
    )
    text, hit = cut(tok.decode(new[:m], skip_special_tokens=True), stops)
    return text, m, "stop" if hit or ended is not None else "length"


def spanning_stop(generator, new: list[int]) -> str:
    """Four characters of the answer across a token boundary (two from each token), first seen there."""
    tok = generator.tokenizer
    text = tok.decode(new, skip_special_tokens=True)
    for k in range(N // 3, len(new) - 1):
        a, b = tok.decode(new[:k], skip_special_tokens=True), tok.decode(new[: k + 1], skip_special_tokens=True)
        if len(a) >= 2 and len(b) >= len(a) + 2 and text.startswith(b):
            stop = text[len(a) - 2 : len(a) + 2]
            if stop.strip() and "\ufffd" not in stop and text.find(stop) == len(a) - 2:
                return stop
    raise AssertionError("no token boundary to put a stop string across")


@pytest.fixture(scope="module")
def stops(generator, bare):
    """A stop string across a token boundary of each answer, one that never appears, and one that the prompt's end
    and the answer's start would spell together (stop strings count in the answer only)."""
    tok = generator.tokenizer
    out = [spanning_stop(generator, new) for _, new in bare[:2]] + [NEVER]
    p, new = bare[2]
    across = p[-3:] + tok.decode(new, skip_special_tokens=True)[:2]
    if all(across not in tok.decode(n, skip_special_tokens=True) for _, n in bare):
        out.append(across)
    return out


def test_stops_cover_the_cases(generator, bare, stops):
    texts = [generator.tokenizer.decode(new, skip_special_tokens=True) for _, new in bare]
    assert NEVER in stops and all(NEVER not in t for t in texts)
    assert len(stops) == 4  # the prompt-spanning one too
    assert sum(cut(t, stops)[1] for t in texts) >= 2


def test_generate_equals_bare_generate_cut_at_the_first_stop(generator, bare, stops):
    for p, new in bare:
        g = generator.generate(p, max_new_tokens=N, stop=stops)
        assert (g.text, g.n_tokens, g.finish_reason) == expected(generator, new, stops)
        assert g.prompt_tokens == len(generator.tokenizer(p)["input_ids"])
        assert g.first_token_s is not None and 0 < g.first_token_s <= g.seconds
    # without stop strings: bare generate's text and token count exactly
    for p, new in bare:
        g = generator.generate(p, max_new_tokens=N, stop=[])
        assert (g.text, g.n_tokens, g.finish_reason) == expected(generator, new, [])


def test_generate_batch_equals_bare_generate_cut_at_the_first_stop(generator, bare, stops):
    gens = generator.generate_batch([p for p, _ in bare], max_new_tokens=N, stop=stops)
    want = [expected(generator, new, stops) for _, new in bare]
    assert [(g.text, g.n_tokens, g.finish_reason) for g in gens] == want
    assert any(f == "stop" for _, _, f in want) and any(f == "length" for _, _, f in want)


def test_stream_joins_to_generate(generator, bare, stops):
    for p, _ in bare:
        g = generator.generate(p, max_new_tokens=N, stop=stops)
        pieces = list(generator.stream(p, max_new_tokens=N, stop=stops))
        last = generator.last
        assert "".join(pieces) == g.text
        assert (last.n_tokens, last.finish_reason, last.prompt_tokens) == (g.n_tokens, g.finish_reason, g.prompt_tokens)
        assert last.first_token_s is not None


def test_stream_closed_early_is_interrupted(generator, bare):
    p, _ = bare[0]
    it = generator.stream(p, max_new_tokens=200, stop=[], ignore_eos=True)
    next(it)
    it.close()
    assert generator.last.finish_reason == "interrupted" and generator.last.n_tokens < 200


def test_decoding_fallback_gives_the_same_answers(generator, bare, stops):
    """Stop strings StopStringCriteria cannot map onto the vocabulary fall back to decoding the tail each step."""
    key = tuple(stops)
    token_stops = generator._stop_matcher(stops)
    assert isinstance(token_stops, models._TokenStops)
    generator._stop_cache[key] = models._TextStops(generator.tokenizer, list(stops))
    try:
        gens = generator.generate_batch([p for p, _ in bare], max_new_tokens=N, stop=stops)
        single = generator.generate(bare[0][0], max_new_tokens=N, stop=stops)
    finally:
        generator._stop_cache[key] = token_stops
    assert [(g.text, g.n_tokens, g.finish_reason) for g in gens] == [expected(generator, n, stops) for _, n in bare]
    assert (single.text, single.n_tokens) == expected(generator, bare[0][1], stops)[:2]
