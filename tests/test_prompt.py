from llamawiki import prompt


def test_example_has_study_format():
    text = prompt.build_example("Qual é a capital do Brasil?", "Brasília.")
    assert text.startswith("Abaixo está uma instrução")
    i, n, r = (text.index(h) for h in ("### Instruction:", "### Input:", "### Response:"))
    assert i < n < r
    assert text[n:r].strip().endswith("Qual é a capital do Brasil?")
    assert text.endswith("### Response:\nBrasília.")


def test_prompt_is_example_prefix():
    q = "Quem foi Tiradentes?"
    assert prompt.build_example(q, "Um inconfidente.").startswith(prompt.build_prompt(q))


def test_context_goes_into_input():
    p = prompt.build_prompt("Quando?", instruction=prompt.INSTRUCTION_RAG, context="Brasília foi inaugurada em 1960.")
    assert "Contexto:\nBrasília foi inaugurada em 1960." in p
    assert "Pergunta: Quando?" in p


def test_split_response_cuts_at_next_section():
    assert prompt.split_response(" A capital é Brasília.\n\n### Answer: outra coisa") == "A capital é Brasília."
    assert prompt.split_response("Brasília.\n### Instruction:\nx") == "Brasília."
    assert prompt.split_response("Sem marcador") == "Sem marcador"


def test_split_response_cuts_when_base_model_restarts_the_prompt():
    text = "1888.\n\nAbaixo está uma instrução que descreve uma tarefa"
    assert prompt.split_response(text) == "1888."


def test_english_question_answer_pair_ends_an_alpaca_answer_but_not_the_study_reproduction():
    from llamawiki import prompt as _p

    rambling = "Brasília.\nQuestion: In which year was Brasília inaugurated?\nAnswer: 1960"
    assert _p.split_response(rambling) == "Brasília."
    assert _p.split_response("Question: In which year?\nAnswer: 1960") == "Question: In which year?"
    # docs/estudo.md: the study did not stop there, and its reproduction keeps that
    assert "\nQuestion:" not in _p.stop_strings("estudo") and "\nAnswer:" not in _p.stop_strings("estudo")
    assert _p.split_response(rambling, "estudo") == rambling
