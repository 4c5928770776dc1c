"""In-process vLLM engine (optional extra `valuelab[vllm]`, imported only when a `vllm:` spec is loaded).

All prompts go to one `LLM.chat` call so continuous batching and automatic prefix caching do their work.
Label log-probabilities come from `SamplingParams(max_tokens=1, logprob_token_ids=...)` where this vLLM has it
(exact ids), else from `logprobs=20` with an upper bound for labels outside the top 20 (reference/tooling.md §2.2).
vLLM V1 returns raw (pre-processing) log-probabilities, so they are full-vocabulary normalised.
"""

from __future__ import annotations

from collections.abc import Sequence

from valuelab.errors import ModelSpecError
from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult
from valuelab.models.hf import label_token_ids
from valuelab.models.openai import logsumexp

TOP_LOGPROBS = 20


class VLLMBackend(Backend):
    kind = "vllm"

    def __init__(self, model_id: str, *, seed: int = 0, enable_thinking: bool | None = None, **engine_kwargs):
        try:
            from vllm import LLM
        except ImportError:
            raise ModelSpecError("the vllm: backend needs vLLM: pip install 'valuelab[vllm]' (Linux with a GPU)") \
                from None
        self.model_id = model_id
        thinking = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
        self.chat_kwargs = {"chat_template_kwargs": thinking} if thinking else {}
        self.llm = LLM(model=model_id, seed=seed, max_logprobs=TOP_LOGPROBS, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        config = self.llm.llm_engine.model_config
        self.revision = getattr(config, "revision", None) or getattr(config, "model", model_id)
        self._label_ids: dict[str, list[int]] = {}

    def identity(self) -> dict[str, str]:
        return {"backend": self.kind, "model": self.model_id, "revision": str(self.revision)}

    def render(self, request: ChoiceRequest) -> str:
        extra = self.chat_kwargs.get("chat_template_kwargs", {})
        return self.tokenizer.apply_chat_template(request.messages(), tokenize=False, add_generation_prompt=True,
                                                  **extra)

    def _params(self, label_ids: list[int]):
        from vllm import SamplingParams

        if hasattr(SamplingParams(), "logprob_token_ids"):
            return SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=label_ids,
                                  logprobs=len(label_ids)), True
        return SamplingParams(max_tokens=1, temperature=0.0, logprobs=TOP_LOGPROBS), False

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        first = self.render(requests[0])
        for label in {label for r in requests for label in r.labels} - set(self._label_ids):
            self._label_ids[label] = label_token_ids(self.tokenizer, first, label)
        all_ids = sorted({i for ids in self._label_ids.values() for i in ids})
        params, exact = self._params(all_ids)
        outputs = self.llm.chat([r.messages() for r in requests], params, use_tqdm=False, **self.chat_kwargs)
        results = []
        for request, out in zip(requests, outputs, strict=True):
            lps = out.outputs[0].logprobs[0]  # token id -> Logprob(logprob, rank, decoded_token)
            top = sorted(((lp.decoded_token or "", float(lp.logprob)) for lp in lps.values()), key=lambda t: -t[1])
            floor = min(float(lp.logprob) for lp in lps.values())
            logps, bound = [], False
            for label in request.labels:
                present = [float(lps[i].logprob) for i in self._label_ids[label] if i in lps]
                bound = bound or (not present and not exact)
                logps.append(logsumexp(present) if present else floor)
            results.append(ChoiceResult.from_logprobs(logps, top[:10], bound_used=bound, labels=request.labels))
        return results

    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        from vllm import SamplingParams

        params = SamplingParams(n=n, temperature=temperature, max_tokens=max_tokens, seed=seed)
        outputs = self.llm.chat([r.messages() for r in requests], params, use_tqdm=False, **self.chat_kwargs)
        return [[c.text for c in out.outputs] for out in outputs]
