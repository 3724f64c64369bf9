"""finetune.py / llamawiki.training on the tiny random Llama: one shared trained run (module fixture), then checks
of what it left behind, plus fast CLI checks of bad input (they fail before any model is loaded)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from llamawiki import prompt
from llamawiki.fileio import UserError, sha256_file

ROOT = Path(__file__).resolve().parent.parent

QA = [
    ("Qual é a capital do Brasil?", "A capital do Brasil é Brasília."),
    ("Quem foi Tiradentes?", "Joaquim José da Silva Xavier, líder da Inconfidência Mineira."),
    ("Quando foi abolida a escravidão no Brasil?", "Em 13 de maio de 1888, pela Lei Áurea."),
    ("Quem proclamou a independência do Brasil?", "Dom Pedro I, em 7 de setembro de 1822."),
]
STEPS = 24  # the shared run: checkpoints at 12 and 24


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tiny model's matmuls are too small for 2 threads: on a busy 2-core machine they make it ~10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _records(n_repeat: int) -> list[dict]:
    return [
        {
            "instruction": prompt.INSTRUCTION_QA,
            "input": q,
            "output": a,
            "text": prompt.build_example(q, a),
            "article": "Brasil",
            "source": "lead",
        }
        for _ in range(n_repeat)
        for q, a in QA
    ]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("data")
    return _write_jsonl(d / "treino.jsonl", _records(4)), _write_jsonl(d / "teste.jsonl", _records(1))


def tiny_cfg(model: Path, train_file: Path, eval_file: Path | None, out: Path, **training) -> dict:
    t = {
        "max_steps": STEPS,
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 4,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "max_length": 128,
        "logging_steps": 2,
        "eval_steps": 12,
        "save_steps": 12,
        "save_total_limit": 3,
        "disable_tqdm": True,
    }
    t.update(training)
    return {
        "model": str(model),
        "train_file": str(train_file),
        "eval_file": str(eval_file) if eval_file else None,
        "output_dir": str(out),
        "seed": 7,
        "lora": {
            "r": 8,
            "alpha": 16,
            "dropout": 0.0,
            "target_modules": "all-linear",
            "modules_to_save": ["lm_head"],
        },  # a random model needs it to learn fast
        "training": t,
    }


@pytest.fixture(scope="module")
def trained(tiny_llama, data_files, tmp_path_factory):
    """One real run shared by the tests: 24 steps, eval and checkpoint every 12, merged at the end."""
    from llamawiki.training import train

    out = tmp_path_factory.mktemp("run") / "lora"
    cfg = tiny_cfg(tiny_llama, *data_files, out)
    assert train(cfg, merge=True) == out
    return cfg, out


def _lora_weights(adapter_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def _logits(model, tokenizer, text: str):
    import torch

    ids = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


def test_loss_decreases(trained):
    _, out = trained
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) >= 8
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.5 * first, losses
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    assert len(evals) >= 2 and evals[-1] < evals[0]


def test_labels_mask_the_prompt(tiny_llama, data_files, tmp_path):
    from llamawiki.training import build_trainer

    run = build_trainer(tiny_cfg(tiny_llama, data_files[0], None, tmp_path / "mask", max_steps=1), quiet=True)
    tok = run.tokenizer
    batch = next(iter(run.trainer.get_train_dataloader()))
    prompts = {q: tok(prompt.build_prompt(q))["input_ids"] for q, _ in QA}
    checked = 0
    for ids, labels, mask in zip(
        batch["input_ids"].tolist(), batch["labels"].tolist(), batch["attention_mask"].tolist(), strict=True
    ):
        n = sum(mask)
        matches = [(q, p) for q, p in prompts.items() if ids[: len(p)] == p]
        assert len(matches) == 1, "each row starts with one of the prompts"
        q, p = matches[0]
        answer = dict(QA)[q]
        assert all(label == -100 for label in labels[: len(p)]), "prompt tokens must not be trained on"
        assert labels[len(p) : n] == ids[len(p) : n], "every completion token is trained on"
        assert ids[n - 1] == tok.eos_token_id and labels[n - 1] == tok.eos_token_id, "eos ends the completion"
        assert tok.decode(ids[len(p) : n - 1]).strip() == answer
        assert all(label == -100 for label in labels[n:]), "padding is not trained on"
        checked += 1
    assert checked == 2
    assert tok.pad_token_id != tok.eos_token_id


def test_adapter_saves_and_reloads(trained, tiny_llama):
    import torch

    from llamawiki.models import load_hf_model

    _, out = trained
    assert (out / "adapter_config.json").exists()
    weights = _lora_weights(out)
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items()), "training moved lora_B off zero"
    base, tok = load_hf_model(tiny_llama)
    tuned, _ = load_hf_model(tiny_llama, adapter=out)
    text = prompt.build_prompt(QA[0][0])
    assert not torch.allclose(_logits(base, tok, text), _logits(tuned, tok, text), atol=1e-4)
    # the adapter learned the answer: its greedy continuation starts like the trained one
    ids = tok(text, return_tensors="pt")
    gen = tuned.generate(**ids, max_new_tokens=12, do_sample=False)
    assert tok.decode(gen[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip().startswith("A capital")


def test_merge_produces_a_model_that_generates(trained, tiny_llama):
    import torch

    from llamawiki.models import load_hf_model

    _, out = trained
    merged_dir = out / "merged"
    assert (merged_dir / "config.json").exists() and not (merged_dir / "adapter_config.json").exists()
    merged, tok = load_hf_model(merged_dir)
    tuned, _ = load_hf_model(tiny_llama, adapter=out)
    text = prompt.build_prompt(QA[1][0])
    assert torch.allclose(_logits(merged, tok, text), _logits(tuned, tok, text), atol=1e-4)
    ids = tok(text, return_tensors="pt")
    gen = merged.generate(**ids, max_new_tokens=8, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]


def test_run_config_and_plot(trained, data_files):
    _, out = trained
    rc = json.loads((out / "run_config.json").read_text())
    assert rc["status"] == "done" and rc["global_step"] == STEPS
    assert rc["seed"] == 7 and rc["config"]["lora"]["r"] == 8 and rc["config"]["quantization"] == "none"
    assert rc["data"]["train"]["sha256"] == sha256_file(data_files[0]) and rc["data"]["train"]["n"] == 16
    assert rc["versions"]["torch"] and rc["versions"]["trl"] and rc["versions"]["peft"]
    assert rc["base_model"]["model_type"] == "llama"
    assert "eval_loss" in rc["metrics"]
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_continues_from_checkpoint(trained, tmp_path):
    """Delete the last checkpoint and the final adapter, resume from checkpoint-12: same final weights."""
    import torch

    from llamawiki.training import build_trainer

    cfg, out = trained
    copy = tmp_path / "lora"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / f"checkpoint-{STEPS}")
    for f in ("adapter_model.safetensors", "adapter_config.json", "trainer_state.json"):
        (copy / f).unlink()
    run = build_trainer(dict(cfg, output_dir=str(copy)), resume=True, quiet=True)
    assert run.resume_from == copy / f"checkpoint-{STEPS // 2}"
    run.trainer.train(resume_from_checkpoint=str(run.resume_from))
    state = run.trainer.state
    assert state.global_step == STEPS
    # the optimizer's state came back: Adam counts 12 restored + 12 new steps (a fresh one would count 12)
    adam_steps = {int(s["step"]) for s in run.trainer.optimizer.state.values()}
    assert adam_steps == {STEPS}
    run.trainer.save_model(str(copy))
    original, resumed = _lora_weights(out), _lora_weights(copy)
    assert original.keys() == resumed.keys()
    for k in original:
        assert torch.allclose(original[k], resumed[k], atol=1e-5), k
    # logged losses after the checkpoint are the original run's
    orig_log = {
        h["step"]: h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h
    }
    new_log = {h["step"]: h["loss"] for h in state.log_history if "loss" in h}
    assert new_log[STEPS] == pytest.approx(orig_log[STEPS], rel=1e-4)


def test_quantized_4bit_path_on_cpu(tiny_llama, data_files, tmp_path):
    pytest.importorskip("bitsandbytes")
    from llamawiki.training import train

    out = tmp_path / "qlora"
    cfg = tiny_cfg(tiny_llama, data_files[0], None, out, max_steps=2, save_steps=2, logging_steps=1)
    cfg["quantization"] = "4bit"
    train(cfg)
    rc = json.loads((out / "run_config.json").read_text())
    assert rc["model_quantization"] == "4bit" and rc["global_step"] == 2
    assert (out / "adapter_model.safetensors").exists()


def test_gpu_out_of_memory_becomes_advice(tiny_llama, data_files, tmp_path, monkeypatch):
    import torch
    import trl

    def oom(self, *a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trl.SFTTrainer, "train", oom)
    from llamawiki.training import train

    with pytest.raises(UserError, match="per_device_train_batch_size \\(now 2\\).*gradient_accumulation_steps"):
        train(tiny_cfg(tiny_llama, data_files[0], None, tmp_path / "oom", max_steps=2))


def test_read_examples_study_list_and_validation(tmp_path):
    from llamawiki.training import read_examples

    study = tmp_path / "treino.json"
    study.write_text(json.dumps([{"input": q, "output": a} for q, a in QA], ensure_ascii=False), encoding="utf-8")
    ex = read_examples(study)
    assert ex[0] == {"prompt": prompt.build_prompt(QA[0][0]), "completion": QA[0][1]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"input": "q", "output": "a"}, {"input": "q2"}]), encoding="utf-8")
    with pytest.raises(UserError, match="item 2"):
        read_examples(bad)


# ---- bad input through the CLI: one line, exit 2, no traceback, before any model is loaded ----------------


def _cli(tmp_path: Path, cfg: dict, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(ROOT / "finetune.py"), "--config", str(path), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=env,
    )


def _assert_user_error(p: subprocess.CompletedProcess, *needles: str) -> None:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    err = p.stderr.strip().splitlines()[-1]
    assert err.startswith("error: ")
    for needle in needles:
        assert needle in err, err


def test_cli_malformed_lines_reported_with_numbers(tiny_llama, data_files, tmp_path):
    train_file = tmp_path / "treino.jsonl"
    good = json.dumps({"input": "q", "output": "a"})
    train_file.write_text(f'{good}\n{{"input": "q", \n{good}\nnot json\n', encoding="utf-8")
    out = tmp_path / "out"
    p = _cli(tmp_path, tiny_cfg(tiny_llama, train_file, None, out))
    _assert_user_error(p, str(train_file), "line 2, 4")
    assert not out.exists()


def test_cli_empty_output_and_missing_fields(tiny_llama, tmp_path):
    empty = _write_jsonl(tmp_path / "empty.jsonl", [{"input": "q", "output": "a"}, {}, {"input": "q", "output": " "}])
    p = _cli(tmp_path, tiny_cfg(tiny_llama, empty, None, tmp_path / "out"))
    _assert_user_error(p, str(empty), "line 2 (missing 'output')", "line 3 (missing 'output')")
    other = _write_jsonl(tmp_path / "other.jsonl", [{"pergunta": "q", "resposta": "a"}])
    p = _cli(tmp_path, tiny_cfg(tiny_llama, other, None, tmp_path / "out"))
    _assert_user_error(p, "none of the expected fields", "pergunta")


def test_cli_missing_base_model(data_files, tmp_path):
    p = _cli(tmp_path, tiny_cfg(tmp_path / "no-such-model", data_files[0], None, tmp_path / "out"))
    _assert_user_error(p, "no-such-model", "base model not found")


def test_cli_refuses_output_dir_of_a_different_run(trained, tmp_path):
    cfg, out = trained
    before = (out / "adapter_model.safetensors").read_bytes()
    p = _cli(tmp_path, dict(cfg, lora=dict(cfg["lora"], r=4)))
    _assert_user_error(p, str(out), "different config", "lora.r: 8 -> 4", "--overwrite")
    assert (out / "adapter_model.safetensors").read_bytes() == before
    p = _cli(tmp_path, dict(cfg, output_dir=str(tmp_path / "fresh")), "--resume")
    _assert_user_error(p, "no checkpoint to resume")


def test_same_config_twice_is_nothing_to_do(trained, capsys):
    # like make: the same command after a finished run trains nothing and says so (exit 0); the adapter stays
    from llamawiki.training import AlreadyTrained, build_trainer, train

    cfg, out = trained
    with pytest.raises(AlreadyTrained):
        build_trainer(cfg, quiet=True)
    before = (out / "adapter_model.safetensors").read_bytes()
    stamp = (out / "run_config.json").stat().st_mtime_ns
    assert train(cfg) == out
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "adapter_model.safetensors").read_bytes() == before
    assert (out / "run_config.json").stat().st_mtime_ns == stamp


def test_cpu_training_is_bit_reproducible(tiny_llama, data_files, tmp_path):
    """Same config and seed, trained twice on one machine: the same adapter bytes (LoRA dropout on, shuffled batches,
    an evaluation and a checkpoint in between); another seed: other bytes. docs/finetune.md, "Reprodutibilidade"."""
    from llamawiki.training import train

    def adapter_sha(name: str, seed: int) -> str:
        cfg = tiny_cfg(tiny_llama, *data_files, tmp_path / name, max_steps=4, eval_steps=2, save_steps=2)
        cfg["lora"]["dropout"] = 0.1
        cfg["seed"] = seed
        train(cfg)
        return sha256_file(tmp_path / name / "adapter_model.safetensors")

    first = adapter_sha("a", 7)
    assert adapter_sha("b", 7) == first
    assert adapter_sha("c", 8) != first


def test_packing_keeps_the_completion_only_loss_exact(tiny_llama, data_files, tmp_path):
    """training.packing: true (trl's bfd packing, padding-free): each packed sequence's prompt tokens are -100,
    its completion tokens (eos included) are labels, and position_ids restart at 0 for every sequence."""
    from llamawiki.training import build_trainer

    cfg = tiny_cfg(
        tiny_llama,
        data_files[0],
        None,
        tmp_path / "pack",
        max_steps=1,
        packing=True,
        max_length=512,
        per_device_train_batch_size=2,
    )
    run = build_trainer(cfg, quiet=True)
    assert run.trainer.args.packing and run.trainer.padding_free
    tok = run.tokenizer
    batch = next(iter(run.trainer.get_train_dataloader()))
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1, "padding-free: one flat row"
    ids, labels, pos = (batch[k][0].tolist() for k in ("input_ids", "labels", "position_ids"))
    starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
    prompts = {q: tok(prompt.build_prompt(q))["input_ids"] for q, _ in QA}
    segments = 0
    for a, b in pairwise(starts):
        assert pos[a:b] == list(range(b - a)), "position_ids count 0, 1, ... within each packed sequence"
        seg_ids, seg_labels = ids[a:b], labels[a:b]
        matches = [(q, p) for q, p in prompts.items() if seg_ids[: len(p)] == p]
        assert len(matches) == 1, "each packed sequence starts with one of the prompts"
        q, p = matches[0]
        assert all(x == -100 for x in seg_labels[: len(p)]), "prompt tokens are not trained on"
        assert seg_labels[len(p) :] == seg_ids[len(p) :], "every completion token is trained on"
        assert seg_ids[-1] == tok.eos_token_id and seg_labels[-1] == tok.eos_token_id
        assert tok.decode(seg_ids[len(p) : -1]).strip() == dict(QA)[q]
        segments += 1
    assert segments > 2, "several examples were packed into the batch"
    # the loss over the packed batch equals the loss over the same examples unpacked (block-diagonal attention)
    import torch

    model = run.trainer.model
    model.eval()
    with torch.no_grad():
        packed = run.trainer.compute_loss(model, {k: v for k, v in batch.items()})
        total, n = 0.0, 0
        for a, b in pairwise(starts):
            one = {
                "input_ids": torch.tensor([ids[a:b]]),
                "attention_mask": torch.ones(1, b - a, dtype=torch.long),
                "labels": torch.tensor([labels[a:b]]),
            }
            k = int((one["labels"][:, 1:] != -100).sum())
            total += float(run.trainer.compute_loss(model, one)) * k
            n += k
    assert float(packed) == pytest.approx(total / n, rel=1e-4)
