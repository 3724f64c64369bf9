"""configs/accelerate/*: each file is read the way accelerate reads it, and cpu.yaml trains on this machine.

cpu.yaml, ddp.yaml, fsdp.yaml and deepspeed_zero2.yaml go through accelerate's own ClusterConfig reader (an
unknown key is an error there); their fsdp_*/deepspeed_* keys must be options of ``accelerate launch`` (the
launcher turns them into flags); deepspeed_zero2.json must be the file deepspeed_zero2.yaml names, and every
"auto" in it a key that transformers' Trainer fills. The GPU launchers cannot start here (no CUDA); cpu.yaml
runs one-process and two-process (DDP over gloo) training for real on the tiny Llama.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llamawiki import prompt

ROOT = Path(__file__).resolve().parent.parent
ACCEL = ROOT / "configs" / "accelerate"

EXPECTED = {  # file -> (distributed_type, num_processes)
    "cpu.yaml": ("NO", 1),
    "ddp.yaml": ("MULTI_GPU", 3),
    "fsdp.yaml": ("FSDP", 3),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 3),
}


def test_every_shipped_accelerate_config_is_listed_here():
    assert sorted(p.name for p in ACCEL.glob("*.yaml")) == sorted(EXPECTED)
    assert sorted(p.name for p in ACCEL.iterdir() if p.suffix == ".json") == ["deepspeed_zero2.json"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_reads_the_config(name):
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(str(ACCEL / name))  # raises on a key this accelerate does not know
    kind, processes = EXPECTED[name]
    assert cfg.distributed_type.value == kind and cfg.num_processes == processes
    # precision comes from the training config (bf16: auto), not from here; DeepSpeed's from the JSON's "auto"s
    assert cfg.mixed_precision == (None if kind == "DEEPSPEED" else "no")


@pytest.mark.parametrize("name, section", [("fsdp.yaml", "fsdp_config"), ("deepspeed_zero2.yaml", "deepspeed_config")])
def test_plugin_keys_are_launcher_options(name, section):
    from accelerate.commands.launch import launch_command_parser

    options = {a.dest for a in launch_command_parser()._actions}
    keys = yaml.safe_load((ACCEL / name).read_text(encoding="utf-8"))[section]
    assert keys and not sorted(set(keys) - options)


def test_deepspeed_json_is_the_named_file_and_its_autos_are_filled_by_the_trainer():
    ds_yaml = yaml.safe_load((ACCEL / "deepspeed_zero2.yaml").read_text(encoding="utf-8"))
    path = ROOT / ds_yaml["deepspeed_config"]["deepspeed_config_file"]
    assert path == ACCEL / "deepspeed_zero2.json"
    ds = json.loads(path.read_text(encoding="utf-8"))
    assert ds["zero_optimization"]["stage"] == 2

    def autos(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from autos(v, f"{prefix}{k}.")
            elif v == "auto":
                yield prefix + k

    import transformers.integrations.deepspeed as hf_ds

    source = Path(hf_ds.__file__).read_text(encoding="utf-8")
    filled = set(re.findall(r'fill_(?:match|only)\(\s*"([^"]+)"', source))
    found = sorted(autos(ds))
    assert found and not sorted(set(found) - filled), sorted(set(found) - filled)


# ---- cpu.yaml, for real -------------------------------------------------------------------------------------


@pytest.fixture
def tiny_run(tiny_llama, tmp_path):
    train = tmp_path / "treino.jsonl"
    rows = [
        {
            "instruction": prompt.INSTRUCTION_QA,
            "input": "Qual é a capital do Brasil?",
            "output": "A capital do Brasil é Brasília.",
        }
    ] * 16
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = {
        "model": str(tiny_llama),
        "train_file": str(train),
        "eval_file": None,
        "output_dir": str(tmp_path / "out"),
        "cpu_threads": 1,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"},
        "training": {
            "max_steps": 2,
            "per_device_train_batch_size": 2,
            "learning_rate": 1e-3,
            "warmup_steps": 0,
            "max_length": 256,
            "logging_steps": 1,
            "save_steps": 1000,
            "disable_tqdm": True,
        },
    }
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return config, tmp_path / "out"


@pytest.mark.parametrize("extra, processes", [((), 1), (("--multi_gpu", "--num_processes", "2"), 2)])
def test_cpu_yaml_trains(tiny_run, extra, processes):
    """One process, and two (DDP over gloo: ``--multi_gpu`` is what turns it on; each process then reads half of
    the data, so two steps of batch 2 cover 8 of the 16 examples instead of 4)."""
    config, out = tiny_run
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ACCEL / "cpu.yaml"),
        *extra,
        "--num_cpu_threads_per_process",
        "1",
        "--main_process_port",
        "0",
        str(ROOT / "finetune.py"),
        "--config",
        str(config),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert state["epoch"] == pytest.approx(2 * 2 * processes / 16)
    assert json.loads((out / "run_config.json").read_text())["status"] == "done"
    assert p.stdout.count("adapter: ") == 1  # only the main process reports (and writes the folder)
