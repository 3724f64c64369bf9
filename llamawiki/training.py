"""Supervised fine-tuning (LoRA / QLoRA) of a causal LM on the instruction dataset, with trl's SFTTrainer.

The whole stage in one place, from the laptop demo (LoRA in fp32 on CPU) to the study's run (QLoRA, 4-bit nf4,
on GPUs, under ``accelerate launch``): the single-process path and the distributed one are the same code.

- Examples are put in prompt/completion form: ``prompt`` is ``prompt.build_prompt(input, instruction)`` (the
  template chat and RAG use at inference) and ``completion`` is the answer followed by eos, so the loss is on
  the answer only (``completion_only_loss``) and the model learns to stop.
- The dataset is validated before any model is loaded; bad input is a ``UserError`` naming file and line.
- Next to the adapter: ``run_config.json`` (resolved config, seed, library versions, dataset hashes, base model)
  and ``loss.png``; checkpoints ``checkpoint-N/`` allow ``resume=True`` (step count, optimizer, scheduler and RNG
  state restored by the Trainer); ``merge=True`` writes ``merged/``, a full model with the adapter folded in.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import gc
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import prompt as _prompt
from .fileio import UserError, atomic_open, atomic_path, library_versions, looks_local, read_jsonl, sha256_file
from .records import read_dataset

RUN_CONFIG = "run_config.json"
LOSS_PLOT = "loss.png"
MERGED_DIR = "merged"

# Every key a config may hold, with its default. ``training`` is passed to trl's SFTConfig: any SFTConfig /
# TrainingArguments field is accepted there (validated against the dataclass).
DEFAULTS: dict[str, Any] = {
    "model": "models/gemma-3-270m-hf",  # HF folder or hub id of the base model
    "train_file": "json/treino.jsonl",  # JSONL records {instruction, input, output, ...} or the study's JSON list
    "eval_file": "json/teste.jsonl",  # null: no evaluation
    "output_dir": "models/lora-demo",  # the adapter, checkpoints, run_config.json, loss.png, merged/
    "max_train_samples": None,  # keep only the first N examples (null: all)
    "max_eval_samples": None,
    "quantization": "auto",  # auto: 4bit (QLoRA) on CUDA, none (fp32 LoRA) on CPU; 4bit | 8bit | none
    "seed": 42,
    "prompt": "alpaca",  # alpaca (this project's template) | estudo (the study's, llama2-finetune.py)
    "learn_eos": True,  # false reproduces the study's pad=eos defect: eos is never a label, so
    # the model never learns to stop (docs/estudo.md)
    "cpu_threads": None,  # torch threads on CPU (null: torch's default); 1 is far faster on a busy machine
    "lora": {
        "r": 16,
        "alpha": 32,
        "dropout": 0.05,
        "target_modules": "all-linear",  # or a list such as [q_proj, k_proj, v_proj, o_proj]
        "modules_to_save": None,  # modules trained in full beside the adapter, e.g. [lm_head]
    },
    "training": {
        "max_steps": 50,
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "learning_rate": 2.0e-4,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "max_length": 512,
        "logging_steps": 5,
        "eval_steps": 25,
        "save_steps": 25,
        "save_total_limit": 2,
        "gradient_checkpointing": "auto",  # auto: on with CUDA, off on CPU (faster there, memory is not the limit)
        "bf16": "auto",  # auto: on with a bf16-capable GPU, off otherwise
        "optim": "adamw_torch",
        "report_to": "none",  # none | tensorboard
    },
}

# Keys whose change does not make a different model (output location, logging): ignored when an output folder's
# previous run is compared with this one.
_NOT_IDENTITY = {
    "output_dir",
    "training.report_to",
    "training.logging_steps",
    "training.save_total_limit",
    "training.save_steps",
    "training.eval_steps",
    "training.per_device_eval_batch_size",
    "training.disable_tqdm",
}
# Files a finished run leaves in its output folder (what --overwrite removes; nothing else is touched).
_RUN_FILES = {
    RUN_CONFIG,
    LOSS_PLOT,
    "adapter_config.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
    "README.md",
    "training_args.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "chat_template.jinja",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "trainer_state.json",
    "all_results.json",
    "train_results.json",
    "eval_results.json",
}
_RUN_DIRS = ("runs", MERGED_DIR)


# ----------------------------------------------------------------------------------------------------------
# configuration


def merged_config(cfg: dict | None) -> dict:
    """``DEFAULTS`` updated with ``cfg``; unknown top-level or lora keys are a UserError (typos are not ignored)."""
    out = copy.deepcopy(DEFAULTS)
    cfg = {k: v for k, v in (cfg or {}).items() if not (k == "gguf_file" and v is None)}
    if cfg.get("gguf_file"):
        raise UserError(
            "config: gguf_file: a GGUF base cannot be fine-tuned; save it as a transformers folder "
            "once (python models/get_embedded.py --gguf <file> --hf <folder>) and set model: <folder>"
        )
    for key, value in cfg.items():
        if key not in DEFAULTS:
            raise UserError(f"config: unknown key {key!r} (known: {', '.join(DEFAULTS)})")
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise UserError(f"config: {key!r} must be a section (key: value pairs)")
            if key == "lora":
                unknown = set(value) - set(DEFAULTS["lora"])
                if unknown:
                    raise UserError(
                        f"config: unknown lora key(s) {sorted(unknown)} (known: {', '.join(DEFAULTS['lora'])})"
                    )
            out[key].update(value)
        else:
            out[key] = value
    out["training"] = {k: _number(v) for k, v in out["training"].items()}
    out["lora"] = {k: _number(v) for k, v in out["lora"].items()}
    if out["quantization"] in (None, False):
        out["quantization"] = "none"
    if out["quantization"] not in ("auto", "4bit", "8bit", "none"):
        raise UserError(f"config: quantization must be auto, 4bit, 8bit or none, not {out['quantization']!r}")
    if not out.get("model"):
        raise UserError("config: 'model' (the base model folder or hub id) is required")
    if not out.get("train_file"):
        raise UserError("config: 'train_file' is required")
    for key in ("max_train_samples", "max_eval_samples"):
        value = out.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"config: {key}: must be an integer >= 1, or null for all (not {value!r})")
    check_lora(out["lora"])
    for key in ("bf16", "gradient_checkpointing"):
        if out["training"].get(key) not in (None, True, False, "auto"):
            raise _fail(f"training.{key}", f"must be true, false or auto, not {out['training'][key]!r}")
    check_training({k: v for k, v in out["training"].items() if k in _TRAINING_TYPES}, _TRAINING_TYPES)
    return out


def _fail(key: str, problem: str) -> UserError:
    return UserError(f"config: {key}: {problem}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_lora(lc: dict) -> None:
    """Types and ranges of the ``lora`` section (peft checks only some of them, and only after the model loads)."""
    if not _is_int(lc.get("r")) or lc["r"] < 1:
        raise _fail("lora.r", f"must be an integer >= 1 (the adapter's rank), not {lc.get('r')!r}")
    if not _is_number(lc.get("alpha")) or lc["alpha"] <= 0:
        raise _fail("lora.alpha", f"must be a number > 0, not {lc.get('alpha')!r}")
    if not _is_number(lc.get("dropout")) or not 0 <= lc["dropout"] < 1:
        raise _fail("lora.dropout", f"must be a number in [0, 1), not {lc.get('dropout')!r}")
    targets = lc.get("target_modules")
    if not (isinstance(targets, str) and targets.strip()) and not (
        isinstance(targets, list) and targets and all(isinstance(t, str) and t for t in targets)
    ):
        raise _fail("lora.target_modules", f"must be all-linear or a list of module names, not {targets!r}")
    extra = lc.get("modules_to_save")
    if extra is not None and not (isinstance(extra, list) and all(isinstance(t, str) and t for t in extra)):
        raise _fail("lora.modules_to_save", f"must be a list of module names or null, not {extra!r}")


# Ranges SFTConfig does not check itself (it takes max_steps=-5 or learning_rate=-1 and fails, or silently does
# nothing, in the middle of training): key -> (lowest value, whether the lowest is allowed, what it means)
_TRAINING_RANGES = {
    "max_steps": (1, True, "the number of optimizer steps, or -1 to train num_train_epochs"),
    "num_train_epochs": (0, False, ""),
    "per_device_train_batch_size": (1, True, ""),
    "per_device_eval_batch_size": (1, True, ""),
    "gradient_accumulation_steps": (1, True, ""),
    "learning_rate": (0, False, ""),
    "warmup_steps": (0, True, "a step count, or a ratio of max_steps below 1"),
    "weight_decay": (0, True, ""),
    "max_grad_norm": (0, True, ""),
    "max_length": (1, True, "tokens per sequence"),
    "logging_steps": (0, False, ""),
    "eval_steps": (0, False, ""),
    "save_steps": (0, False, ""),
    "save_total_limit": (1, True, ""),
}


# The SFTConfig field types of the common numeric keys, checked at once (the full check against the installed trl's
# SFTConfig, in ``sft_config``, needs trl imported: ~5 s).
_TRAINING_TYPES: dict[str, Any] = {
    "max_steps": int,
    "num_train_epochs": float,
    "per_device_train_batch_size": int,
    "per_device_eval_batch_size": int,
    "gradient_accumulation_steps": int,
    "learning_rate": float,
    "warmup_steps": float,
    "weight_decay": float,
    "max_grad_norm": float,
    "max_length": int | None,
    "logging_steps": float,
    "eval_steps": float | None,
    "save_steps": float,
    "save_total_limit": int | None,
    "packing": bool,
    "padding_free": bool,
}


def _type_problem(value: Any, hint: Any) -> str | None:
    """None if ``value`` fits the dataclass field type ``hint`` (int, float, bool, str, enums, unions of them)."""
    import enum
    import types
    import typing

    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    names = []
    for m in members:
        if m is type(None):
            if value is None:
                return None
            names.append("null")
        elif m is bool:
            if isinstance(value, bool):
                return None
            names.append("true/false")
        elif m is int:
            if _is_int(value):
                return None
            names.append("an integer")
        elif m is float:
            if _is_number(value):
                return None
            names.append("a number")
        elif isinstance(m, type) and issubclass(m, enum.Enum):
            choices = [str(e.value) for e in m]
            if value in choices:
                return None
            if isinstance(value, str):
                import difflib

                close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
                hint = (
                    f"closest: {close[0]!r}"
                    if close
                    else ", ".join(choices[:6]) + (", ..." if len(choices) > 6 else "")
                )
                return f"{value!r} is not one of the {len(choices)} choices ({hint})"
            names.append("a string")
        elif m is str:
            if isinstance(value, str) and not any(isinstance(o, type) and issubclass(o, enum.Enum) for o in members):
                return None
            names.append("a string")
        else:
            return None  # lists, dicts, Any: left to SFTConfig
    return f"expected {' or '.join(dict.fromkeys(names))}, not {value!r}"


def check_training(t: dict, fields: dict) -> None:
    """Every ``training`` value against its SFTConfig field type, and the ranges SFTConfig leaves unchecked."""
    for key, value in t.items():
        if key in fields:
            problem = _type_problem(value, fields[key])
            if problem:
                raise _fail(f"training.{key}", problem)
    for key, (low, inclusive, meaning) in _TRAINING_RANGES.items():
        value = t.get(key)
        if value is None or not _is_number(value):
            continue
        if key == "max_steps" and value == -1:
            continue
        if value < low or (value == low and not inclusive):
            bound = f">= {low}" if inclusive else f"> {low}"
            raise _fail(f"training.{key}", f"must be {bound}{f' ({meaning})' if meaning else ''}, not {value!r}")


def _number(value: Any) -> Any:
    """YAML reads ``1e-4`` (no dot) and ``--set lr=1e-4`` as strings; numbers they are."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value.strip()):
        f = float(value)
        return int(f) if f.is_integer() and "e" not in value.lower() and "." not in value else f
    return value


def resolve_device(cfg: dict) -> dict:
    """Fill the ``auto`` values from the hardware: quantization, bf16, gradient checkpointing, use_cpu."""
    import torch

    cfg = copy.deepcopy(cfg)
    cuda = torch.cuda.is_available()
    t = cfg["training"]
    if cfg["quantization"] == "auto":
        cfg["quantization"] = "4bit" if cuda else "none"
    if t.get("bf16") == "auto":
        t["bf16"] = bool(cuda and torch.cuda.is_bf16_supported())
    if t.get("gradient_checkpointing") == "auto":
        t["gradient_checkpointing"] = cuda
    if not cuda:
        # auto is off here (fp32 LoRA: most CPUs have no fast bf16 kernels); an explicit bf16: true is kept (CPU
        # autocast, slower) so a config runs on CPU with the precision it ships with
        t["fp16"] = False
        t["use_cpu"] = True
    return cfg


def _identity(cfg: dict, data: dict) -> dict:
    """What makes two runs the same experiment: the resolved config minus logging keys, plus the data hashes."""
    flat = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            for k, v in value.items():
                flat[f"{key}.{k}"] = v
        else:
            flat[key] = value
    ident = {k: v for k, v in flat.items() if k not in _NOT_IDENTITY}
    ident["data"] = {name: d["sha256"] for name, d in data.items()}
    return json.loads(json.dumps(ident, sort_keys=True, default=str))


# ----------------------------------------------------------------------------------------------------------
# data


def read_examples(path: str | os.PathLike[str], template: str = "alpaca") -> list[dict]:
    """Read and validate a training file: ``[{"prompt", "completion"}]`` (or ``[{"text"}]`` for raw text).

    The dataset's records (``records.read_dataset``: json/treino.jsonl, or the study's ``{"input", "output"}``
    list) become prompt/completion pairs with the one prompt template. A file of only raw-text records (the
    dataset's raw mode) trains on whole texts. Malformed lines, records without an answer and files with none of
    the expected fields raise UserError with the line numbers.
    """
    path = Path(path)
    try:
        records = read_dataset(path)
    except UserError:
        items = read_jsonl(path)  # bad JSON is reported by read_dataset already; look at the fields
        expected = ("output", "input", "instruction", "text")
        if not any(k in item for item in items for k in expected):
            found = sorted({k for item in items[:100] for k in item})
            raise UserError(
                f"{path}: none of the expected fields ({', '.join(expected)}); "
                f"found: {', '.join(found) or 'only empty records'}"
            ) from None
        raise
    qa = [r for r in records if r.get("source") != "raw"]
    if not qa:
        return [{"text": r["text"]} for r in records]
    if len(qa) < len(records):
        print(f"{path}: {len(records) - len(qa)} raw-text record(s) ignored (training on question/answer pairs)")
    return [
        {
            "prompt": _prompt.build_prompt(r["input"], r["instruction"], template=template),
            "completion": r["output"].strip(),
        }
        for r in qa
    ]


def load_data(cfg: dict) -> dict[str, dict]:
    """Validated examples of the train and eval files, with their hashes: {"train": {...}, "eval": {...}}."""
    data = {}
    for name, key, limit in (("train", "train_file", "max_train_samples"), ("eval", "eval_file", "max_eval_samples")):
        path = cfg.get(key)
        if not path:
            continue
        examples = read_examples(path, _prompt.check_template(str(cfg.get("prompt") or "alpaca")))
        if cfg.get(limit):
            examples = examples[: int(cfg[limit])]
        data[name] = {"path": str(path), "sha256": sha256_file(path), "examples": examples, "n": len(examples)}
    if "eval" in data and ("text" in data["eval"]["examples"][0]) != ("text" in data["train"]["examples"][0]):
        raise UserError(f"{data['eval']['path']}: not the same kind of records as {data['train']['path']}")
    return data


def to_dataset(examples: list[dict], eos_token: str | None):
    """A ``datasets.Dataset`` in prompt/completion form, eos appended to each completion (or to each text)."""
    from datasets import Dataset

    eos = eos_token or ""
    field = "completion" if "completion" in examples[0] else "text"
    rows = [dict(ex, **{field: ex[field] if ex[field].endswith(eos) else ex[field] + eos}) for ex in examples]
    return Dataset.from_list(rows)


# ----------------------------------------------------------------------------------------------------------
# the output folder


def _check_base_model(model: str) -> None:
    local = Path(model).expanduser()
    if looks_local(model) and not local.exists():
        raise UserError(f"{model}: base model not found (the demo's is made by `make models`; see models/README.md)")
    if local.is_dir() and any(local.glob("*.gguf")) and not (local / "config.json").exists():
        raise UserError(
            f"{model}: a GGUF folder cannot be trained; save it as a transformers folder first "
            "(python models/get_embedded.py --gguf <file> --hf <folder>)"
        )


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why a ``checkpoint-N`` folder cannot be resumed from (a file missing or cut short: the disk filled up or the
    run was stopped while saving), or None."""
    from .checks import read_safetensors_header

    state = ckpt / "trainer_state.json"
    if not state.exists():
        return "trainer_state.json is missing"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return "trainer_state.json is truncated or unreadable"
    weights = ckpt / "adapter_model.safetensors"
    if weights.exists():
        try:
            read_safetensors_header(weights)
        except UserError as e:
            return f"adapter_model.safetensors is damaged ({str(e).split(': ', 1)[-1]})"
    elif not any((ckpt / f).exists() for f in ("adapter_model.bin", "model.safetensors", "pytorch_model.bin")):
        return "adapter_model.safetensors is missing"
    for name in ("optimizer.pt", "scheduler.pt"):
        f = ckpt / name
        if not f.exists():
            return f"{name} is missing"
        if f.stat().st_size == 0:
            return f"{name} is empty"
    return None


def _checkpoints(output_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    found = []
    for p in Path(output_dir).glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def last_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    """The complete ``checkpoint-N`` folder with the highest N in ``output_dir``, or None (an incomplete one, cut
    by a full disk or an interruption while saving, is skipped: see ``checkpoint_problem``)."""
    for _, p in reversed(_checkpoints(output_dir)):
        if checkpoint_problem(p) is None:
            return p
    return None


def no_checkpoint_error(output_dir: str | os.PathLike[str]) -> UserError:
    """What ``--resume`` says when no checkpoint can be resumed: none at all, or which one is incomplete and why."""
    found = _checkpoints(output_dir)
    if not found:
        return UserError(f"{output_dir}: no checkpoint to resume from (no checkpoint-N folder)")
    _, newest = found[-1]
    return UserError(
        f"{output_dir}: no checkpoint to resume from: {newest.name} is incomplete "
        f"({checkpoint_problem(newest)}; the disk filled up or the run stopped while saving?); free "
        f"some space, then remove {newest} and train again (or start over with --overwrite)"
    )


class AlreadyTrained(Exception):
    """The output folder already holds a finished run of exactly this config: there is nothing to do (like make,
    running the same command twice is not an error; --overwrite trains it again)."""

    def __init__(self, output_dir: Path):
        super().__init__(f"{output_dir}: already holds a finished run of this config")
        self.output_dir = output_dir


def prepare_output_dir(output_dir: Path, identity: dict, resume: bool, overwrite: bool) -> Path | None:
    """Check the output folder against this run; return the checkpoint to resume from (or None).

    A folder holding a run of a different config is refused unless ``resume`` (continue it) or ``overwrite``
    (remove that run's files first). Only a run's own files are removed, never anything else in the folder.
    A run that failed or died before its first checkpoint holds nothing worth keeping: its folder is reused.
    A run still training there (its process alive) is refused whatever the flags.
    """
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    previous = output_dir / RUN_CONFIG
    old = _read_run_config(previous)
    live = _live_run(old)
    if live and not (overwrite and "another machine" in live):
        raise UserError(
            f"{output_dir}: a run is training in this folder now ({live}); wait for it, stop it, "
            "or use another --output-dir"
        )
    if resume:
        ckpt = last_checkpoint(output_dir)
        if ckpt is None:
            raise no_checkpoint_error(output_dir)
        return ckpt
    ckpt = last_checkpoint(output_dir)
    has_run = previous.exists() or ckpt is not None
    has_adapter = any((output_dir / f).exists() for f in ("adapter_model.safetensors", "adapter_model.bin"))
    stopped_early = ckpt is None and not has_adapter and old.get("status") in ("running", "failed", "interrupted")
    if has_run and not overwrite and stopped_early:
        print(
            f"{output_dir}: the previous run stopped before its first checkpoint ({old.get('status')}"
            f"{', ' + str(old['error']) if old.get('error') else ''}); starting afresh in this folder"
        )
    elif has_run and not overwrite:
        if old.get("identity") != identity:
            diff = _diff(old.get("identity") or {}, identity)
            raise UserError(
                f"{output_dir}: holds a run with a different config ({diff}); "
                "use --resume to continue it, --overwrite to replace it, or another --output-dir"
            )
        if old.get("status") == "done":
            raise AlreadyTrained(output_dir)
        if ckpt is not None:
            raise UserError(
                f"{output_dir}: holds an unfinished run of this config (last: {ckpt.name}); "
                "use --resume to continue it or --overwrite to start over"
            )
    if has_run:
        clear_run(output_dir)
    return None


def _read_run_config(path: Path) -> dict:
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def _live_run(old: dict) -> str | None:
    """'pid N on HOST' if ``old`` (a run_config.json) says running and its process is alive; None otherwise.

    A run on another machine (a shared cluster filesystem) cannot be checked from here: it counts as alive."""
    import socket

    if old.get("status") != "running" or not old.get("pid"):
        return None
    where = f"pid {old['pid']} on {old.get('host')}"
    if old.get("host") != socket.gethostname():
        return where + " (another machine: cannot tell if it still runs; --overwrite if it does not)"
    try:
        os.kill(int(old["pid"]), 0)
    except ProcessLookupError:
        return None
    except (PermissionError, ValueError, OverflowError):
        pass
    return None if int(old["pid"]) == os.getpid() else where


def _diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not old:
        return "no readable run_config.json"
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:4]) + (" ..." if len(keys) > 4 else "")


def clear_run(output_dir: Path) -> None:
    """Remove a previous run's checkpoints, adapter, logs and merged model from ``output_dir`` (nothing else)."""
    for p in output_dir.glob("checkpoint-*"):
        if p.is_dir():
            shutil.rmtree(p)
    for name in _RUN_DIRS:
        if (output_dir / name).is_dir():
            shutil.rmtree(output_dir / name)
    for name in _RUN_FILES:
        path = output_dir / name
        if name == "README.md" and path.is_file() and not path.read_text(errors="replace").startswith("---"):
            continue  # not the model card peft writes: someone's own README
        if path.is_file():
            path.unlink()


# ----------------------------------------------------------------------------------------------------------
# model and trainer


@dataclass
class Run:
    """Everything a training run is made of (returned by ``build_trainer`` so tests and notebooks can look in)."""

    cfg: dict  # resolved config
    data: dict  # load_data(...) without the examples
    identity: dict
    output_dir: Path
    resume_from: Path | None
    trainer: Any
    tokenizer: Any


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _oom_advice(cfg: dict) -> str:
    t = cfg["training"]
    return (
        "GPU out of memory: lower per_device_train_batch_size (now {b}) and raise gradient_accumulation_steps "
        "(now {g}) to keep the effective batch, lower max_length (now {m}), turn gradient_checkpointing on "
        "(now {c}), or use quantization: 4bit; e.g. --set training.per_device_train_batch_size=1 "
        "--set training.gradient_accumulation_steps={g2}"
    ).format(
        b=t.get("per_device_train_batch_size"),
        g=t.get("gradient_accumulation_steps"),
        m=t.get("max_length"),
        c=t.get("gradient_checkpointing"),
        g2=int(t.get("gradient_accumulation_steps") or 1) * int(t.get("per_device_train_batch_size") or 1),
    )


def sft_config(cfg: dict, output_dir: Path, has_eval: bool, text_mode: bool):
    """trl's SFTConfig from the ``training`` section (unknown keys -> UserError)."""
    import dataclasses

    _quiet_bitsandbytes()
    import typing

    from trl import SFTConfig

    t = dict(cfg["training"])
    known = {f.name for f in dataclasses.fields(SFTConfig)}
    unknown = sorted(set(t) - known)
    if unknown:
        import difflib

        import trl

        def _closest(key: str) -> str:
            if key == "logging_dir":
                return (
                    "transformers 5 removed it: TensorBoard logs go to <output_dir>/runs/<date>_<host>, "
                    "or to $TENSORBOARD_LOGGING_DIR when set"
                )
            match = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            return f"closest valid key: {match[0]!r}" if match else "no close SFTConfig field"

        raise UserError(
            "config: "
            + "; ".join(
                f"unknown training key {k!r} for the installed trl {trl.__version__} ({_closest(k)})" for k in unknown
            )
        )
    check_training(t, typing.get_type_hints(SFTConfig))
    t.setdefault("seed", cfg["seed"])
    t.setdefault("data_seed", cfg["seed"])
    # ``gradient_checkpointing`` (the name the papers and trl use) is ``activation_checkpointing`` in transformers 5
    checkpointing = bool(t.pop("gradient_checkpointing", False))
    checkpointing_kwargs = t.pop("gradient_checkpointing_kwargs", None)
    t.setdefault("activation_checkpointing", checkpointing)
    if t["activation_checkpointing"]:
        t.setdefault("activation_checkpointing_kwargs", checkpointing_kwargs or {"use_reentrant": False})
    if has_eval:
        t.setdefault("eval_strategy", "steps")
    else:
        t["eval_strategy"] = "no"
        t.pop("eval_steps", None)
    t.setdefault("prediction_loss_only", True)  # evaluation needs the loss, not the logits of every token
    t.setdefault("ddp_find_unused_parameters", False)  # every LoRA weight is used: skip DDP's extra graph walk
    t.setdefault("save_strategy", "steps")
    t.setdefault("logging_strategy", "steps")
    t.setdefault("logging_first_step", True)
    if t.get("report_to") in (None, "none", [], "null"):
        t["report_to"] = "none"
    # TensorBoard: transformers 5 has no ``logging_dir``; its TensorBoardCallback writes to
    # <output_dir>/runs/<date>_<host> (or $TENSORBOARD_LOGGING_DIR when set), so the logs stay in <output_dir>/runs
    # loss on the answer only (prompt tokens get label -100); `completion_only_loss: false` = the study's full-text loss
    t["completion_only_loss"] = bool(t.get("completion_only_loss", True)) and not text_mode
    t.setdefault("dataset_num_proc", None)
    if t.get("packing") and t.get("packing_strategy") == "wrapped" and t["completion_only_loss"]:
        raise UserError(
            "config: training.packing_strategy: 'wrapped' cuts examples mid-way (an answer can lose its "
            "prompt); use bfd or bfd_split with the answer-only loss"
        )
    if t.get("padding_free") and not t.get("packing") and t.get("max_length") is not None:
        raise UserError(
            "config: training.padding_free: without packing the installed trl cannot enforce max_length; "
            "use packing: true (padding-free is then on), or max_length: null"
        )
    try:
        return SFTConfig(output_dir=str(output_dir), **t)
    except (TypeError, ValueError) as e:
        raise UserError(f"config: training: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def _quiet_bitsandbytes() -> None:
    """bitsandbytes warns on import, on CPUs with AVX512-bf16, that an optional faster CPU kernel package is
    missing: one line of noise before every message (the 4-bit path works without it)."""
    import logging

    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def lora_config(cfg: dict):
    _quiet_bitsandbytes()
    from peft import LoraConfig

    lc = cfg["lora"]
    targets = lc["target_modules"]
    if isinstance(targets, str) and targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    if "lm_head" in (targets if isinstance(targets, list) else []):
        import trl

        raise UserError(
            f"config: lora.target_modules: the installed trl {trl.__version__} cannot train a LoRA on "
            "lm_head (its loss reads lm_head.weight directly); remove it, or train it in full with "
            "lora.modules_to_save: [lm_head]"
        )
    check_lora(lc)
    try:
        return LoraConfig(
            r=lc["r"],
            lora_alpha=lc["alpha"],
            lora_dropout=float(lc["dropout"]),
            target_modules=targets,
            modules_to_save=lc.get("modules_to_save") or None,
            bias="none",
            task_type="CAUSAL_LM",
        )
    except (TypeError, ValueError) as e:
        raise UserError(f"config: lora: {_first_line(e)}") from None


def load_model(cfg: dict):
    """Base model through the one loader (``models.load_hf_model``), ready for LoRA / QLoRA."""
    import torch

    from .models import load_hf_model

    quant = None if cfg["quantization"] == "none" else cfg["quantization"]
    cuda = torch.cuda.is_available()
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if fsdp and quant is not None:
        raise UserError(
            "quantization 4bit/8bit is not supported under FSDP here: use configs/accelerate/ddp.yaml or "
            "deepspeed_zero2.yaml for QLoRA, or --set quantization=none with FSDP"
        )
    if cuda:
        # DDP: one full copy per process, each rank on its own GPU (not device_map="auto" across them);
        # FSDP: load on CPU and let FSDP shard it onto the GPUs
        device_map: Any = "cpu" if fsdp else {"": int(os.environ.get("LOCAL_RANK", "0"))}
        dtype: Any = (
            torch.bfloat16
            if cfg["training"].get("bf16")
            else (torch.float16 if cfg["training"].get("fp16") else torch.float32)
        )
    else:
        device_map, dtype = None, torch.float32
    try:
        model, tokenizer = load_hf_model(cfg["model"], quantization=quant, dtype=dtype, device_map=device_map)
    except torch.cuda.OutOfMemoryError:
        raise UserError(
            f"{cfg['model']}: GPU out of memory while loading the model: use quantization: 4bit, "
            "fewer processes per GPU, or a smaller model"
        ) from None
    model.config.use_cache = False  # the KV cache is useless (and warns) during training
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=bool(cfg["training"].get("gradient_checkpointing")),
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return model, tokenizer


def _trl_trainer_class():
    from trl import SFTTrainer

    return SFTTrainer


def _cpu_trainer_class():
    """SFTTrainer whose loss projects only the trained positions through the LM head (used on CPU).

    Without Triton, trl's fused LM head projects every position through the vocabulary and recomputes it in the
    backward pass, which is slow with Gemma's 262k-token vocabulary (measured in docs/benchmarks.md, "Perda só
    nas respostas no CPU"). This one asks the model (its own forward: DDP, soft-capping and LoRA included) for
    the logits of the answer positions only (``logits_to_keep``). Same loss: mean cross-entropy over answer tokens.
    """
    import torch.nn.functional as F
    from trl import SFTTrainer

    class CpuSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"]
            targets = labels[:, 1:]  # logits at t predict token t + 1
            keep = (targets != -100).any(dim=0).nonzero().squeeze(-1)
            forward = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**forward, use_cache=False, logits_to_keep=keep)
            logits = outputs.logits.float()
            targets = targets[:, keep]
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
            )
            n_tokens = (targets != -100).sum() if num_items_in_batch is None else num_items_in_batch
            loss = loss / _clamp_min1(n_tokens)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients across ranks
            return (loss, outputs) if return_outputs else loss

    return CpuSFTTrainer


def _clamp_min1(n):
    import torch

    return torch.as_tensor(n).clamp(min=1)


def build_trainer(cfg: dict, *, resume: bool = False, overwrite: bool = False, quiet: bool = False) -> Run:
    """Validate data and output folder, load the model, and return a ready ``SFTTrainer`` (not yet trained).

    Raises UserError for every bad input before the model is loaded.
    """
    cfg = merged_config(cfg)
    data = load_data(cfg)  # bad data: fail before anything heavy
    _check_base_model(str(cfg["model"]))
    if resume and last_checkpoint(cfg["output_dir"]) is None:
        raise no_checkpoint_error(cfg["output_dir"])
    cfg = resolve_device(cfg)
    output_dir = Path(cfg["output_dir"])
    identity = _identity(cfg, data)
    text_mode = "text" in data["train"]["examples"][0]
    # every setting is checked (trl's SFTConfig and peft's LoraConfig built) before the output folder is touched
    # and before the model loads
    args = sft_config(cfg, output_dir, "eval" in data, text_mode)
    peft_config = lora_config(cfg)
    if _is_main_process():
        resume_from = prepare_output_dir(output_dir, identity, resume, overwrite)
    else:
        resume_from = last_checkpoint(output_dir) if resume else None
    if not quiet and _is_main_process():
        if cfg["training"].get("use_cpu"):
            kind = (
                "QLoRA (4-bit)"
                if cfg["quantization"] == "4bit"
                else ("LoRA (8-bit base)" if cfg["quantization"] == "8bit" else "LoRA in fp32")
            )
            amp = (
                " with bf16 autocast (training.bf16: true; slower than fp32 on most CPUs)"
                if cfg["training"].get("bf16")
                else ""
            )
            print(f"CUDA not available: training {kind} on CPU{amp}")
        if text_mode:
            print(f"{data['train']['path']}: records have only 'text': training on whole texts (no prompt masking)")

    if cfg["training"].get("use_cpu") and cfg.get("cpu_threads"):
        import torch

        torch.set_num_threads(int(cfg["cpu_threads"]))
    model, tokenizer = load_model(cfg)
    train_ds = to_dataset(data["train"]["examples"], tokenizer.eos_token)
    eval_ds = to_dataset(data["eval"]["examples"], tokenizer.eos_token) if "eval" in data else None
    # trl seeds, then wraps the model with the LoRA adapter (peft) and enables input grads for checkpointing
    # trl's own loss on GPU (Triton) and for quantized bases (trl keeps their adapters in bf16)
    plain_cpu = args.use_cpu and cfg["quantization"] == "none"
    trainer_cls = _cpu_trainer_class() if plain_cpu else _trl_trainer_class()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    if not cfg.get("learn_eos", True):
        trainer.data_collator = MaskToken(trainer.data_collator, tokenizer.eos_token_id)
    _check_cut_examples(cfg, data, {"train": trainer.train_dataset, "eval": trainer.eval_dataset}, quiet)
    summary = {k: {kk: vv for kk, vv in v.items() if kk != "examples"} for k, v in data.items()}
    return Run(cfg, summary, identity, output_dir, resume_from, trainer, tokenizer)


def _check_cut_examples(cfg: dict, data: dict, prepared: dict, quiet: bool = False) -> None:
    """trl drops the examples whose prompt alone fills ``max_length`` (no answer token left to learn): all of
    them dropped is a UserError naming the file (trl would fail later with a sampler traceback); some dropped is
    a warning with the count (unpacked datasets only: packing changes the number of rows)."""
    t = cfg["training"]
    for split, ds in prepared.items():
        if split not in data or ds is None:
            continue
        try:
            rows = len(ds)
        except TypeError:  # an iterable dataset: nothing to count
            continue
        total, path = len(data[split]["examples"]), data[split]["path"]
        why = (
            f"the prompt alone fills training.max_length ({t.get('max_length')} tokens), so no answer token "
            "is left to learn"
        )
        if rows == 0:
            raise UserError(f"{path}: all {total} examples are dropped: {why}; raise training.max_length")
        if not t.get("packing") and rows < total and not quiet and _is_main_process():
            print(f"warning: {path}: {total - rows} of {total} examples dropped: {why}", file=sys.stderr)


class MaskToken:
    """A data collator that never trains on one token: ``learn_eos: false`` reproduces the study's pad=eos
    setup, where transformers' language-modeling collator masked every pad (= eos) label, so the model never
    saw the end of an answer as a target and never learned to stop."""

    def __init__(self, inner, token_id: int):
        self.inner, self.token_id = inner, token_id

    def __call__(self, features):
        batch = self.inner(features)
        batch["labels"][batch["labels"] == self.token_id] = -100
        return batch


# ----------------------------------------------------------------------------------------------------------
# the stage


def train(cfg: dict, *, resume: bool = False, overwrite: bool = False, merge: bool = False) -> Path:
    """Train a LoRA adapter as ``cfg`` says; return the adapter folder (``cfg["output_dir"]``).

    resume: continue from the last ``checkpoint-N`` in the output folder; overwrite: replace a previous run of a
    different config there; merge: also write ``<output_dir>/merged`` (base + adapter as one full model).
    """
    try:
        run = build_trainer(cfg, resume=resume, overwrite=overwrite)  # bad input fails here, before torch loads
    except AlreadyTrained as done:
        print(
            f"{done.output_dir}: already holds a finished run of this config (run_config.json): nothing to do; "
            "--overwrite trains it again"
        )
        if merge and not (done.output_dir / MERGED_DIR).exists():
            merge_adapter(cfg["model"], done.output_dir, done.output_dir / MERGED_DIR)
            print(f"merged model: {done.output_dir / MERGED_DIR} (base {cfg['model']} + adapter)")
        return done.output_dir
    import torch

    trainer, out = run.trainer, run.output_dir
    main = trainer.is_world_process_zero()
    started = _now()
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_run_config(run, status="running", started=started)
    stop = StopOnSignal()
    trainer.add_callback(stop.callback)
    try:
        with stop.installed():
            result = trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from else None)
    except BaseException as e:  # the folder must say the run is over, so a corrected rerun may reuse it
        if main:
            write_run_config(run, status="failed", started=started, error=_first_line(e)[:300])
        if isinstance(e, torch.cuda.OutOfMemoryError):
            raise UserError(_oom_advice(run.cfg)) from None
        raise
    if stop.signum is not None:
        ckpt = last_checkpoint(out)
        if main:
            write_run_config(run, status="interrupted", started=started)
        saved = f"checkpoint saved in {ckpt}" if ckpt else "no checkpoint could be saved"
        raise UserError(
            f"{out}: interrupted ({signal_name(stop.signum)}) at step {trainer.state.global_step}: "
            f"{saved}; continue with --resume",
            exit_code=128 + stop.signum,
        )
    metrics = dict(result.metrics)
    if "eval" in run.data:
        last = [h for h in trainer.state.log_history if "eval_loss" in h]
        if last and last[-1].get("step") == trainer.state.global_step:  # the final step was just evaluated
            metrics.update({k: v for k, v in last[-1].items() if k.startswith("eval_")})
        else:
            try:
                metrics.update(trainer.evaluate())
            except torch.cuda.OutOfMemoryError:
                raise UserError(_oom_advice(run.cfg)) from None
    trainer.save_model(str(out))  # adapter_config.json + adapter_model.safetensors (+ tokenizer)
    trainer.save_state()  # trainer_state.json: the log history (losses) of the whole run
    if main:
        plot_loss(trainer.state.log_history, out / LOSS_PLOT)
        write_run_config(run, status="done", started=started, metrics=metrics)
    trainer.accelerator.wait_for_everyone()
    if main:
        print(f"adapter: {out}  (loss plot: {out / LOSS_PLOT}, config: {out / RUN_CONFIG})")
    if merge and main:
        del trainer, run.trainer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        merge_adapter(cfg_model := run.cfg["model"], out, out / MERGED_DIR)
        print(f"merged model: {out / MERGED_DIR} (base {cfg_model} + adapter)")
    return out


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


class StopOnSignal:
    """Ctrl-C (SIGINT) or SIGTERM (SLURM's notice before a time limit) during training: finish the current step,
    save a checkpoint of it, stop. A second signal stops at once, without saving. ``signum`` says which came.

    Under several processes every rank gets the signal, maybe at different steps: the flag is all-reduced at each
    step end (one integer), so every rank saves and stops at the same step."""

    def __init__(self):
        from transformers import TrainerCallback

        self.signum: int | None = None
        self._requested: int | None = None
        outer = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if outer._stop_now(args):
                    control.should_save = True
                    control.should_training_stop = True
                return control

        self.callback = _Callback()

    def _stop_now(self, args) -> bool:
        requested = self._requested or 0
        if getattr(args, "world_size", 1) > 1:
            import torch
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                flag = torch.tensor([requested], device=args.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                requested = int(flag.item())
        if requested:
            self.signum = requested
        return bool(requested)

    def _handler(self, signum, frame):
        if self._requested is not None:
            raise KeyboardInterrupt
        self._requested = signum
        print(
            f"\n{signal_name(signum)}: saving a checkpoint at the end of this step, then stopping "
            "(again to stop at once, without saving)",
            flush=True,
        )

    @contextlib.contextmanager
    def installed(self):
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        before = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def write_run_config(
    run: Run, status: str, started: str, metrics: dict | None = None, error: str | None = None
) -> Path:
    """``run_config.json``: what made this adapter (config, seed, versions, data hashes, base model, results)."""
    import torch

    state = run.trainer.state
    device = "cpu"
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    import socket

    record = {
        "status": status,  # running | done | failed | interrupted
        "started": started,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "error": error,
        "finished": _now() if status == "done" else None,
        "base_model": _base_model_info(run.cfg["model"]),
        "seed": run.cfg["seed"],
        "config": run.cfg,
        "identity": run.identity,
        "data": run.data,
        "resumed_from": str(run.resume_from) if run.resume_from else None,
        "global_step": state.global_step,
        "model_quantization": _loaded_quantization(run.trainer.model),
        "metrics": metrics or {},
        "device": device,
        "world_size": run.trainer.args.world_size,
        "versions": library_versions(),
    }
    path = run.output_dir / RUN_CONFIG
    with atomic_open(path) as f:
        json.dump(record, f, ensure_ascii=False, indent=2, default=str)
        f.write("\n")
    return path


def _loaded_quantization(model) -> str:
    """How the base weights really sit in memory (4bit / 8bit / their dtype), read from the model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base, "is_loaded_in_4bit", False):
        return "4bit"
    if getattr(base, "is_loaded_in_8bit", False):
        return "8bit"
    return str(next(base.parameters()).dtype).replace("torch.", "")


def _base_model_info(model: str) -> dict:
    info: dict[str, Any] = {"model": str(model)}
    conf = Path(model) / "config.json"
    if conf.exists():
        info["config_sha256"] = sha256_file(conf)
        try:
            c = json.loads(conf.read_text(encoding="utf-8"))
            info["architectures"] = c.get("architectures")
            info["model_type"] = c.get("model_type")
        except ValueError:
            pass
    return info


def plot_loss(log_history: list[dict], path: str | os.PathLike[str]) -> Path | None:
    """Train and eval loss against the step, from ``trainer.state.log_history``; None if nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h and "step" in h]
    if not train and not evals:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="treino", marker=".")
    if evals:
        ax.plot(*zip(*evals, strict=True), label="validação", marker="o")
    ax.set_xlabel("passo")
    ax.set_ylabel("loss")
    ax.set_title("Loss do fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def merge_adapter(base: str, adapter: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Fold a LoRA adapter into its base model and save the full model + tokenizer to ``out``.

    The base is reloaded unquantized (merging into 4-bit weights would lose precision) through the one loader.
    A base model loaded from a GGUF file cannot be saved merged: train (and merge) its saved HF folder instead.
    """
    from .models import load_hf_model

    out = Path(out)
    lm, tokenizer = load_hf_model(base, adapter=adapter)
    merged = lm.merge_and_unload()
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    merged.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
