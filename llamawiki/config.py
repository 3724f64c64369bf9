"""YAML experiment configs with command-line overrides (``--set key=value``, dotted keys allowed)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .fileio import UserError


def load_config(path: str | Path | None, overrides: list[str] | None = None, defaults: dict | None = None) -> dict:
    """Defaults <- YAML file <- ``key=value`` overrides (values parsed as YAML: 5, 1e-4, true, [a, b])."""
    cfg: dict[str, Any] = copy.deepcopy(defaults or {})
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: config file not found")
        if path.is_dir():
            raise UserError(f"{path}: is a folder, expected a YAML config file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
        except yaml.YAMLError as e:
            raise UserError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
        if data is None:  # an empty file would silently mean "every default": a full default run
            raise UserError(f"{path}: empty config (no settings); see configs/demo.yaml for every key")
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a mapping of settings at the top level, found a {type(data).__name__}")
        _merge(cfg, data)
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = cfg
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {item!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return cfg


def _merge(base: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
