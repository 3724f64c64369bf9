"""The one prompt template of the study (Alpaca-style, in Portuguese).

Training examples, chat, RAG and the comparison all build their prompts here, so training and inference can
never drift apart (alpaca-lora's ``Prompter`` idea). The format is the study's::

    {"text": "Abaixo está uma instrução ... ### Instruction: ... ### Input: <pergunta> ### Response: <resposta>"}
"""

from __future__ import annotations

PREAMBLE = (
    "Abaixo está uma instrução que descreve uma tarefa, emparelhada com uma entrada que fornece mais contexto. "
    "Escreva uma resposta que complete adequadamente o pedido."
)
PREAMBLE_NO_INPUT = (
    "Abaixo está uma instrução que descreve uma tarefa. Escreva uma resposta que complete adequadamente o pedido."
)

# The default instruction for question answering (the study's task).
INSTRUCTION_QA = "Responda à pergunta a seguir em português, de forma curta e correta."
# The instruction used when retrieved passages are given as context (RAG).
INSTRUCTION_RAG = (
    "Responda à pergunta em português usando apenas o contexto fornecido. "
    'Se o contexto não contiver a resposta, diga: "Não sei com base no contexto."'
)

INSTRUCTION_HEADER = "### Instruction:"
INPUT_HEADER = "### Input:"
RESPONSE_HEADER = "### Response:"

# Generation stops here: the start of a new section means the response is over. The study's fine-tuned model
# rambled on ("### Answer: ...") because it never learned to stop; these strings and eos end it.
# A base model that loses the Portuguese prompt falls back to English "Question: …\nAnswer: …" pairs (measured on
# the demo: rag.py ask "Em que ano foi inaugurada Brasília?"): a new pair is a new section too. Not for the
# `estudo` template, whose reproduction keeps the study's behaviour (docs/estudo.md).
STOP_STRINGS = [
    "### Instruction:",
    "### Input:",
    "### Response:",
    "\n### ",
    "\nPergunta:",
    "Abaixo está uma instrução",
    "\nQuestion:",
    "\nAnswer:",
]


# The study's own template (llama2-finetune.py of the original repository), kept verbatim for `prompt: estudo`:
# no preamble, English section names, the answer right after "### Answer: ". Its typos are the study's.
INSTRUCTION_ESTUDO = (
    "Utilize a Question fornecida para gerar uma Answer sucinta em português, que consiste em uma Answer "
    "fundamentada apartir de todo o seu conhecimento sobre a Question, caso nao saiba a resposta, nao gere novas "
    "perguntas e responda: nao sei a resposta "
)
ESTUDO_STOP_STRINGS = ["### Question:", "### Instruction:", "\n ### Answer:", "\n### "]

# LangChain's default "stuff" QA prompt, what the study's ConversationalRetrievalChain sent for a first question
# (no chat history, so no condense-question step): English, which may be why its RAG answered in English.
LANGCHAIN_QA_PROMPT = (
    "Use the following pieces of context to answer the question at the end. If you don't know the answer, just "
    "say that you don't know, don't try to make up an answer.\n\n{context}\n\nQuestion: {question}\nHelpful Answer:"
)

TEMPLATES = ("alpaca", "estudo")


def check_template(template: str) -> str:
    if template not in TEMPLATES:
        from .fileio import UserError

        raise UserError(f"prompt: unknown template {template!r} (use {' or '.join(TEMPLATES)})")
    return template


def build_prompt(
    question: str, instruction: str = INSTRUCTION_QA, context: str | None = None, template: str = "alpaca"
) -> str:
    """The prompt up to and including ``### Response:\\n`` (what the model completes).

    ``template="estudo"``: the study's ``### Instruction: … ### Question: … ### Answer: `` with its fixed
    instruction (``instruction`` is ignored, as the study had one); a context then uses LangChain's English QA
    prompt, as the study's RAG did.
    """
    question = question.strip()
    if check_template(template) == "estudo":
        if context is not None:
            return LANGCHAIN_QA_PROMPT.format(context=context.strip(), question=question)
        return f"### Instruction: {INSTRUCTION_ESTUDO}\n### Question: {question}\n ### Answer: "
    entrada = question if context is None else f"Contexto:\n{context.strip()}\n\nPergunta: {question}"
    if not entrada:
        return f"{PREAMBLE_NO_INPUT}\n\n{INSTRUCTION_HEADER}\n{instruction.strip()}\n\n{RESPONSE_HEADER}\n"
    return (
        f"{PREAMBLE}\n\n{INSTRUCTION_HEADER}\n{instruction.strip()}\n\n{INPUT_HEADER}\n{entrada}\n\n{RESPONSE_HEADER}\n"
    )


def stop_strings(template: str = "alpaca") -> list[str]:
    """Where an answer in this template ends (a new section starts)."""
    return list(ESTUDO_STOP_STRINGS if check_template(template) == "estudo" else STOP_STRINGS)


def build_example(question: str, answer: str, instruction: str = INSTRUCTION_QA, template: str = "alpaca") -> str:
    """A full training example: prompt + answer (the study's ``text`` field)."""
    return build_prompt(question, instruction, template=template) + answer.strip()


def split_response(text: str, template: str = "alpaca") -> str:
    """The answer part of a generated completion: cut at the first stop string of its template, stripped."""
    cut = len(text)
    for stop in stop_strings(template):
        i = text.find(stop)
        if i != -1:
            cut = min(cut, i)
    return text[:cut].strip()


# The judge (compare.py's optional `judge:` model): it reads the question, the reference and the answer and says
# whether the answer is right. Meant for a 13B+ chat model on a GPU; a 270M base model is no judge.
INSTRUCTION_JUDGE = (
    "Você é um avaliador rigoroso. Compare a resposta do sistema com a resposta de referência e diga se a "
    "resposta do sistema está correta: ela precisa afirmar o mesmo fato principal da referência, sem "
    "contradizê-la. Uma resposta que lista vários candidatos, ou que não responde, está incorreta. "
    'Responda com uma só palavra: "correta" ou "incorreta".'
)


def build_judge_prompt(question: str, reference: str, answer: str, instruction: str = INSTRUCTION_JUDGE) -> str:
    """The judge's prompt: the same Alpaca layout, the three texts in the Input."""
    entrada = (
        f"Pergunta: {question.strip()}\nResposta de referência: {reference.strip()}\n"
        f"Resposta do sistema: {answer.strip() or '(vazia)'}"
    )
    return build_prompt(entrada, instruction)


def parse_verdict(text: str) -> float | None:
    """The judge's first word: "correta"/"correto"/"sim" -> 1.0, "incorreta"/"errada"/"não" -> 0.0, else None."""
    import unicodedata

    word = "".join(c for c in unicodedata.normalize("NFKD", text.strip().casefold()) if c.isalpha() or c == " ")
    first = (word.split() or [""])[0]
    if first.startswith(("incorret", "errad", "nao", "falsa", "falso")):
        return 0.0
    if first.startswith(("corret", "certa", "certo", "sim", "verdadeir")):
        return 1.0
    return None


# LLM-written questions (build_dataset.py --modes llm): the study asked ChatGPT for question/answer pairs about
# excerpts of its articles. The generator reads one excerpt and writes pairs in a fixed, parseable layout.
INSTRUCTION_LLM_QA = (
    "Leia o trecho do artigo da Wikipédia e escreva {n} pergunta(s) em português que o trecho responde, cada uma "
    "com uma resposta curta e correta tirada do próprio trecho. Cada pergunta deve fazer sentido sozinha: diga "
    'o nome do assunto em vez de "ele" ou "o texto". Use exatamente este formato, sem mais nada:\n'
    "Pergunta: <pergunta>?\nResposta: <resposta>."
)
# Where a completion of the LLM-questions prompt is over (not "\nPergunta:": the pairs are made of it).
LLM_QA_STOP_STRINGS = ["### Instruction:", "### Input:", "### Response:", "\n### ", "Abaixo está uma instrução"]


def build_llm_questions_input(title: str, excerpt: str) -> str:
    """The Input of the LLM-questions prompt: the article's title and one excerpt."""
    return f"Artigo: {title.strip()}\n\nTrecho:\n{excerpt.strip()}"


def build_llm_questions_prompt(title: str, excerpt: str, n: int, instruction: str = INSTRUCTION_LLM_QA) -> str:
    """The completion prompt (Alpaca layout) asking a generator for ``n`` pairs about ``excerpt``."""
    return build_prompt(build_llm_questions_input(title, excerpt), instruction.format(n=n))
