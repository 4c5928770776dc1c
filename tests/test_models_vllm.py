"""The vllm: backend, run only where vLLM is installed (Linux with a GPU)."""

from __future__ import annotations

import importlib.util

import pytest

from valuelab.errors import ModelSpecError
from valuelab.models import load_model

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here; the missing-extra message cannot be seen")
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(ModelSpecError, match="needs the 'vllm' package"):
        load_model("vllm:some/model")


@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (optional extra valuelab[vllm], needs a GPU)")
def test_vllm_agrees_with_hf(smollm2):
    from test_models_hf import PAIRS, requests_for

    from valuelab.models.smollm2 import gguf_path

    backend = load_model(f"vllm:{gguf_path()}", tokenizer=str(smollm2.model_id))
    for v, h in zip(backend.choice_probs(requests_for(PAIRS)), smollm2.choice_probs(requests_for(PAIRS)),
                    strict=True):
        assert v.p_a == pytest.approx(h.p_a, abs=0.05)
