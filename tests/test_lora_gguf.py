"""llamawiki.lora_gguf proven numerically on the ``llama`` architecture (the study's Llama-2 path).

A tiny random GQA Llama (4 heads, 2 KV heads, head_dim 16) is written as an f32 GGUF the way llama.cpp's
converter does (tests/gguf_tiny.py). llama.cpp's logits must equal transformers' on the base model, then with a
PEFT LoRA on every linear layer converted by lora_to_gguf (llama.cpp ``lora_path``) equal PEFT's: this holds only
if lora_B's q/k rows are permuted like the base's q/k rows (per head for q, per KV head for k).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf_tiny import sharpen_tiny_llama, write_llama_gguf

from llamawiki import lora_gguf
from llamawiki.fileio import UserError, sha256_file

torch = pytest.importorskip("torch")
pytest.importorskip("llama_cpp")
pytest.importorskip("peft")
pytest.importorskip("gguf")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TEXT = "A capital do Brasil é Brasília. Quem foi Tiradentes?"
TOL = 1e-4  # max |llama.cpp - torch| / max |torch| (measured: ~1e-6 with float32 weights and KV cache)
GGML_TYPE_F32 = 0


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def llama_logits(gguf_path: Path, ids: list[int], lora: Path | None = None) -> np.ndarray:
    """Logits of every position from llama.cpp (float32 KV cache, so only the weights' precision counts)."""
    from llama_cpp import Llama
    from llama_cpp._utils import suppress_stdout_stderr

    with suppress_stdout_stderr():
        llm = Llama(
            model_path=str(gguf_path),
            lora_path=str(lora) if lora else None,
            n_ctx=64,
            n_batch=64,
            logits_all=True,
            n_threads=2,
            n_threads_batch=2,
            type_k=GGML_TYPE_F32,
            type_v=GGML_TYPE_F32,
            verbose=False,
            seed=0,
        )
        try:
            llm.eval(ids)
            return np.array(llm.scores[: len(ids)], dtype=np.float32)
        finally:
            llm.close()


def torch_logits(model, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def load_hf(hf_dir: Path):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()


def make_lora(hf_dir: Path, out: Path, *, seed: int, use_rslora: bool = False):
    """A PEFT LoRA (r=4, alpha=8, all linear layers) with random nonzero A and B, saved to ``out``.

    Returns (adapter folder, the PEFT model in eval mode).
    """
    from peft import LoraConfig, get_peft_model

    model = load_hf(hf_dir)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=TARGETS,
        use_rslora=use_rslora,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    peft_model.eval()
    peft_model.save_pretrained(out)
    return out, peft_model


@pytest.fixture(scope="module")
def tiny(tiny_llama, tmp_path_factory):
    """The sharpened tiny Llama (HF folder), its GGUF, the fixed ids and the transformers base logits."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("lora-gguf")
    hf_dir = sharpen_tiny_llama(Path(tiny_llama), root / "hf")
    config = json.loads((hf_dir / "config.json").read_text())
    # the properties that make this a test of the GQA permutation
    assert config["num_key_value_heads"] < config["num_attention_heads"] and config["head_dim"] >= 4
    gguf_path = write_llama_gguf(hf_dir, root / "tiny-f32.gguf")
    tok = AutoTokenizer.from_pretrained(hf_dir)
    ids = [config["bos_token_id"], *tok(TEXT)["input_ids"]]
    base = torch_logits(load_hf(hf_dir), ids)
    return {"root": root, "hf": hf_dir, "gguf": gguf_path, "ids": ids, "base": base}


@pytest.fixture(scope="module")
def lora(tiny):
    """A saved random LoRA, its PEFT logits and its GGUF conversion."""
    adapter, peft_model = make_lora(tiny["hf"], tiny["root"] / "adapter", seed=1)
    ref = torch_logits(peft_model, tiny["ids"])
    out = lora_gguf.lora_to_gguf(adapter, tiny["gguf"], tiny["root"] / "adapter.gguf")
    return {"dir": adapter, "ref": ref, "gguf": out}


# ------------------------------------------------------------------------------------------------------------
# The base GGUF writer (the ground the LoRA checks stand on)
# ------------------------------------------------------------------------------------------------------------


def test_base_gguf_matches_transformers(tiny):
    got = llama_logits(tiny["gguf"], tiny["ids"])
    assert got.shape == tiny["base"].shape
    assert rel_err(got, tiny["base"]) < TOL
    # not a trivially flat model: the logits vary across the vocabulary and across positions
    assert tiny["base"].std() > 0.3
    assert np.abs(np.diff(tiny["base"], axis=0)).max() > 1.0


def test_base_gguf_tokenizer_matches_transformers(tiny):
    from llama_cpp import Llama
    from llama_cpp._utils import suppress_stdout_stderr

    with suppress_stdout_stderr():
        llm = Llama(model_path=str(tiny["gguf"]), n_ctx=64, vocab_only=True, verbose=False)
    try:
        assert llm.tokenize(TEXT.encode("utf-8"), add_bos=False, special=False) == tiny["ids"][1:]
        assert llm.token_bos() == tiny["ids"][0]
    finally:
        llm.close()


def test_base_gguf_without_qk_permutation_is_wrong(tiny):
    """The tiny model is sensitive to the rotary layout (so the LoRA permutation checks below can fail)."""
    wrong = write_llama_gguf(tiny["hf"], tiny["root"] / "tiny-noperm.gguf", permute_qk=False)
    assert rel_err(llama_logits(wrong, tiny["ids"]), tiny["base"]) > 100 * TOL


# ------------------------------------------------------------------------------------------------------------
# LoRA conversion
# ------------------------------------------------------------------------------------------------------------


def test_lora_gguf_matches_peft(tiny, lora):
    got = llama_logits(tiny["gguf"], tiny["ids"], lora=lora["gguf"])
    assert rel_err(got, lora["ref"]) < TOL
    # the adapter has a clear effect, which llama.cpp reproduces
    assert rel_err(lora["ref"], tiny["base"]) > 0.05
    assert rel_err(got, tiny["base"]) > 0.05


def test_lora_gguf_tensors(tiny, lora):
    """One lora_a/lora_b pair per adapted matrix, with llama.cpp's shapes, alpha and the source stamp."""
    import gguf

    reader = gguf.GGUFReader(lora["gguf"])
    names = {t.name for t in reader.tensors}
    expected = {
        f"blk.{i}.{m}.weight.lora_{ab}"
        for i in range(2)
        for ab in "ab"
        for m in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    }
    assert names == expected
    meta, _ = lora_gguf.read_gguf_header(lora["gguf"])
    assert meta["general.architecture"] == "llama"
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == pytest.approx(8.0)
    assert meta[lora_gguf.SOURCE_KEY] == sha256_file(lora["dir"] / "adapter_model.safetensors")


@pytest.mark.parametrize("wrong", ["no permutation", "k permuted with n_head"])
def test_lora_gguf_wrong_permutation_does_not_match(tiny, lora, monkeypatch, wrong):
    """Without the q/k row permutation of lora_B, or with k permuted per query head instead of per KV head
    (GQA), llama.cpp's logits leave PEFT's: the match above is evidence, not luck."""
    real = lora_gguf._permute_rows
    n_head = json.loads((tiny["hf"] / "config.json").read_text())["num_attention_heads"]
    fake = (lambda w, heads: w) if wrong == "no permutation" else (lambda w, heads: real(w, n_head))
    monkeypatch.setattr(lora_gguf, "_permute_rows", fake)
    out = lora_gguf.lora_to_gguf(lora["dir"], tiny["gguf"], tiny["root"] / "adapter-wrong.gguf")
    assert rel_err(llama_logits(tiny["gguf"], tiny["ids"], lora=out), lora["ref"]) > 100 * TOL


def test_rslora_gguf_matches_peft(tiny):
    adapter, peft_model = make_lora(tiny["hf"], tiny["root"] / "adapter-rslora", seed=2, use_rslora=True)
    ref = torch_logits(peft_model, tiny["ids"])
    out = lora_gguf.lora_to_gguf(adapter, tiny["gguf"])
    assert out == adapter / lora_gguf.GGUF_ADAPTER_NAME
    assert rel_err(llama_logits(tiny["gguf"], tiny["ids"], lora=out), ref) < TOL
    # rsLoRA's scale alpha/sqrt(r) = 4 differs from plain LoRA's alpha/r = 2: a plain conversion would not match
    assert lora_gguf.read_gguf_header(out)[0]["adapter.lora.alpha"] == pytest.approx(16.0)


def test_load_llamacpp_applies_the_adapter_folder(tiny, lora, tmp_path):
    """models.load_llamacpp(adapter=<finetune.py folder>) converts, caches and applies it."""
    import llama_cpp

    from llamawiki.models import load_llamacpp

    adapter = tmp_path / "adapter"
    shutil.copytree(lora["dir"], adapter)
    gen = load_llamacpp(tiny["gguf"], adapter=adapter, n_ctx=64, n_threads=2)
    try:
        assert (adapter / lora_gguf.GGUF_ADAPTER_NAME).exists()
        gen.llm.eval(tiny["ids"])
        n_vocab = lora["ref"].shape[1]
        # a copy: the array views llama.cpp's buffer, freed by close()
        last = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(gen.llm.ctx, -1), shape=(n_vocab,)).copy()
    finally:
        gen.llm.close()
    # default f16 KV cache here: a looser bound, still far below the adapter's effect
    assert rel_err(last, lora["ref"][-1]) < 1e-2
    assert rel_err(lora["ref"][-1], tiny["base"][-1]) > 0.05


# ------------------------------------------------------------------------------------------------------------
# Errors and the cache
# ------------------------------------------------------------------------------------------------------------


def test_adapter_for_another_model_is_a_user_error(tiny, lora):
    one_layer = write_llama_gguf(tiny["hf"], tiny["root"] / "tiny-1layer.gguf", block_count=1)
    with pytest.raises(
        UserError,
        match=r"adapter does not match the base model \(tiny-1layer\.gguf has no tensor "
        r"matching model\.layers\.1\.",
    ):
        lora_gguf.lora_to_gguf(lora["dir"], one_layer, tiny["root"] / "never.gguf")
    assert not (tiny["root"] / "never.gguf").exists()


def test_adapter_with_extra_module_is_a_user_error(tiny, lora, tmp_path):
    from safetensors.numpy import load_file, save_file

    adapter = tmp_path / "adapter"
    shutil.copytree(lora["dir"], adapter)
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    a = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
    tensors["base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight"] = a
    save_file(tensors, str(weights))
    with pytest.raises(
        UserError,
        match=r"adapter does not match the base model .*matching "
        r"model\.layers\.7\.self_attn\.q_proj",
    ):
        lora_gguf.lora_to_gguf(adapter, tiny["gguf"])
    assert not (adapter / lora_gguf.GGUF_ADAPTER_NAME).exists()


def _wrong_shape_adapter(lora, folder: Path) -> Path:
    """The tiny LoRA with q_proj's lora_B of layer 0 cut to half its rows: names right, one shape wrong (what a
    LoRA of another model of the same architecture looks like to the converter)."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(lora["dir"], folder)
    weights = folder / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
    tensors[key] = np.ascontiguousarray(tensors[key][: tensors[key].shape[0] // 2])
    save_file(tensors, str(weights))
    return folder


def test_adapter_with_wrong_shapes_is_refused_before_writing(tiny, lora, tmp_path):
    adapter = _wrong_shape_adapter(lora, tmp_path / "adapter")
    with pytest.raises(
        UserError,
        match=r"adapter: adapter does not match the base model \(tiny-f32\.gguf: "
        r"blk\.0\.attn_q\.weight: the adapter's is 32x64, the base model's 64x64\)",
    ):
        lora_gguf.ensure_lora_gguf(adapter, tiny["gguf"])
    assert not (adapter / lora_gguf.GGUF_ADAPTER_NAME).exists()  # nothing cached


def test_cached_adapter_for_another_base_is_refused(tiny, lora, tmp_path, monkeypatch):
    """A conversion cached without the shape check (an older version) is not trusted: checked on every use,
    the folder and the .gguf file given directly are both refused (llama.cpp would crash on them)."""
    adapter = _wrong_shape_adapter(lora, tmp_path / "adapter")
    with monkeypatch.context() as m:
        m.setattr(lora_gguf, "lora_mismatch", lambda *a: None)
        cached = lora_gguf.lora_to_gguf(adapter, tiny["gguf"])
    assert lora_gguf.adapter_mismatch(cached, tiny["gguf"]) is not None
    for given in (adapter, cached):
        with pytest.raises(UserError, match=f"{given}: adapter does not match the base model"):
            lora_gguf.ensure_lora_gguf(given, tiny["gguf"])
    # the good adapter's own conversion passes the same check
    assert lora_gguf.adapter_mismatch(lora["gguf"], tiny["gguf"]) is None


def test_missing_safetensors_is_a_user_error(tiny, lora, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    shutil.copy2(lora["dir"] / "adapter_config.json", adapter)
    with pytest.raises(UserError, match="no adapter_model.safetensors"):
        lora_gguf.lora_to_gguf(adapter, tiny["gguf"])
    with pytest.raises(UserError, match="no adapter_model.safetensors"):
        lora_gguf.ensure_lora_gguf(adapter, tiny["gguf"])


def test_dora_is_a_user_error(tiny, lora, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(lora["dir"], adapter)
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["use_dora"] = True
    config_path.write_text(json.dumps(config))
    with pytest.raises(UserError, match="DoRA"):
        lora_gguf.lora_to_gguf(adapter, tiny["gguf"])


def test_ensure_lora_gguf_caches_and_rebuilds(tiny, lora, tmp_path):
    from safetensors.numpy import load_file, save_file

    adapter = tmp_path / "adapter"
    shutil.copytree(lora["dir"], adapter)
    cached = lora_gguf.ensure_lora_gguf(adapter, tiny["gguf"])
    assert cached == adapter / lora_gguf.GGUF_ADAPTER_NAME
    first = cached.stat().st_mtime_ns
    assert lora_gguf.ensure_lora_gguf(adapter, tiny["gguf"]) == cached
    assert cached.stat().st_mtime_ns == first  # not rewritten
    # a GGUF adapter file is used as is
    assert lora_gguf.ensure_lora_gguf(cached, tiny["gguf"]) == cached

    # retrained adapter: new weights -> new conversion carrying the new stamp and the new weights
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    tensors = {k: (2 * v if "lora_B" in k else v) for k, v in tensors.items()}
    save_file(tensors, str(weights))
    rebuilt = lora_gguf.ensure_lora_gguf(adapter, tiny["gguf"])
    assert rebuilt == cached
    assert rebuilt.stat().st_mtime_ns != first
    assert lora_gguf.read_gguf_header(rebuilt)[0][lora_gguf.SOURCE_KEY] == sha256_file(weights)
    old = llama_logits(tiny["gguf"], tiny["ids"], lora=lora["gguf"])
    new = llama_logits(tiny["gguf"], tiny["ids"], lora=rebuilt)
    assert rel_err(new, old) > 0.05
