"""What a planned audit will cost before it runs: prompts, model calls, tokens in and out, and time per stage.

The stages run first on a stand-in model (the synthetic Thurstonian agent; free-form questions get a fixed
reply) through an in-memory store, so the counts are the audit's own: its budgets and holdouts, both answer
orders, and the answers one stage reuses from another. Prompt tokens come from rendering an even sample of the
recorded questions for the planned model (its tokenizer and chat template where one can be loaded, else about
four characters per token); time from a given or measured prompts-per-second rate in the planned mode.

    >>> estimate_frame("quick", "smollm2", prompts_per_second=30.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import pandas as pd

from valuelab.analyses import get
from valuelab.analyses.suites import plan
from valuelab.models import load_model, parse_spec
from valuelab.models.base import Backend, ChoiceRequest
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import Store, StoredModel

CHARS_PER_TOKEN = 4.0
"""English text runs about four characters per token on BPE vocabularies (OpenAI's rule of thumb)."""

TOKENS_PER_MESSAGE = 4
"""Chat formatting tokens around each message, for the approximate count."""

FREE_FORM_REPLY = "I would pick the first one."



class StandIn(SyntheticBackend):
    """The synthetic agent, recording each question with its number of samples and token limit."""

    def __init__(self) -> None:
        super().__init__(0)
        self.asked: list[tuple[ChoiceRequest, int, int | None]] = []  # (question, samples, token limit)

    def _choice_probs(self, requests):
        self.asked += [(r, 1, None) for r in requests]
        return super()._choice_probs(requests)

    def sample(self, requests, n, temperature=1.0, max_tokens=16, seed=0):
        self.asked += [(r, n, max_tokens) for r in requests]
        return [super(StandIn, self).sample([r], n, temperature, max_tokens, seed)[0]
                if r.options is not None and len(r.options) == len(r.labels) else [FREE_FORM_REPLY] * n
                for r in requests]


@dataclass
class StageEstimate:
    """`prompts`: distinct questions asked; `calls`: model requests (prompts × samples in sample mode);
    `completion_tokens`: an upper bound when sampling (every sample at its token limit)."""

    key: str
    title: str
    prompts: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float | None


@dataclass
class Estimate:
    model: str
    mode: str
    token_count: str
    prompts_per_second: float | None
    stages: list[StageEstimate] = field(default_factory=list)

    def total(self) -> StageEstimate:
        sums = {k: sum(getattr(s, k) for s in self.stages)
                for k in ("prompts", "calls", "prompt_tokens", "completion_tokens")}
        seconds = sum(s.seconds for s in self.stages) if self.prompts_per_second else None
        return StageEstimate("total", "Total", **sums, seconds=seconds)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(s) for s in [*self.stages, self.total()]])

    def to_dict(self) -> dict:
        return {"model": self.model, "mode": self.mode, "token_count": self.token_count,
                "prompts_per_second": self.prompts_per_second, "stages": [asdict(s) for s in self.stages],
                "total": asdict(self.total())}


def token_counter(model_spec: str, backend: Backend | None = None) -> tuple[Callable[[ChoiceRequest], int], str]:
    """Prompt tokens of one question for the planned model, and how they are counted."""
    tokenizer, render = None, None
    spec = parse_spec(model_spec)
    if backend is not None and hasattr(backend, "tokenizer"):
        tokenizer, render = backend.tokenizer, backend.render
    elif spec.prefix in ("smollm2", "hf", "vllm"):
        prefix, name = spec.prefix, spec.name
        try:
            if prefix == "smollm2" or name.endswith(".gguf"):
                tokenizer = load_model(prefix if prefix == "smollm2" else f"hf:{name}").tokenizer
            else:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError):
            tokenizer = None  # not available here: fall back to the approximate count
    if tokenizer is not None:
        def chat(request: ChoiceRequest) -> str:
            return tokenizer.apply_chat_template(request.messages(), tokenize=False, add_generation_prompt=True)

        draw = render or chat
        return (lambda r: len(tokenizer(draw(r), add_special_tokens=False).input_ids)), "tokenizer"

    def approximate(request: ChoiceRequest) -> int:
        messages = request.messages()
        return round(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages)

    return approximate, f"approximate ({CHARS_PER_TOKEN:g} characters per token)"


def measure_rate(backend: Backend, requests: Sequence[ChoiceRequest], *, mode: str, n_samples: int,
                 max_tokens: int) -> float:
    """Prompts per second of `backend` on `requests` in the planned mode, after a two-prompt warm-up."""
    model = StoredModel(backend, Store(), mode=mode, n_samples=n_samples, max_tokens=max_tokens, progress=False)
    model.choice_probs(list(requests[:2]))
    started = time.perf_counter()
    model.choice_probs(list(requests[2:]))
    return max(len(requests) - 2, 1) / (time.perf_counter() - started)


def estimate(suite_or_stages="quick", model_spec: str = "smollm2", *, seed: int = 0, outcomes: str | None = None,
             only: Sequence[str] | None = None, mode: str = "logprob", n_samples: int = 10, max_tokens: int = 16,
             prompts_per_second: float | None = None, measure: int = 0, backend: Backend | None = None,
             sample_size: int = 100) -> Estimate:
    """Predicted prompts, calls, tokens and seconds per stage of an audit of `model_spec`.

    `suite_or_stages` is a suite name or a list of `valuelab.analyses.suites.Stage`, planned exactly as
    `valuelab audit` plans it (`valuelab.analyses.suites.plan`). Time needs `prompts_per_second`, or
    `measure=N` to time N of the planned prompts on the model (loaded from `model_spec` unless `backend` is
    given); without either it is left out.
    """
    from matplotlib import pyplot as plt

    stand_in = StandIn()
    model = StoredModel(stand_in, Store(), mode=mode, n_samples=n_samples, max_tokens=max_tokens, progress=False)
    count, how = token_counter(model_spec, backend)
    local = parse_spec(model_spec).provider.local
    rows, spans = [], []
    for stage in plan(suite_or_stages, outcomes, only):
        start, asked = len(stand_in.asked), model.counts.asked
        get(stage.analysis).run(model, seed=seed, **stage.options)
        plt.close("all")
        spans.append((start, len(stand_in.asked)))
        rows.append((stage, model.counts.asked - asked))
    if measure and prompts_per_second is None:
        asked = [r for r, _, _ in stand_in.asked]
        picks = [asked[k * len(asked) // (measure + 2)] for k in range(measure + 2)]
        prompts_per_second = measure_rate(backend or load_model(model_spec), picks, mode=mode,
                                          n_samples=n_samples, max_tokens=max_tokens)
    result = Estimate(model_spec, mode, how, prompts_per_second)
    for (stage, prompts), (start, end) in zip(rows, spans, strict=True):
        asked = stand_in.asked[start:end]
        calls = sum(n for _, n, _ in asked)
        sample = asked[:: max(1, len(asked) // sample_size)][:sample_size]
        mean = sum(count(r) for r, _, _ in sample) / len(sample) if sample else 0.0
        # Log-prob calls generate one token on servers and none locally; samples count at their token limit.
        out = sum(n * limit if limit is not None else 0 if local else 1 for _, n, limit in asked)
        seconds = prompts / prompts_per_second if prompts_per_second else None
        result.stages.append(StageEstimate(stage.key, stage.heading, prompts, calls, round(mean * calls), out,
                                           seconds))
    return result


def estimate_frame(suite_or_stages="quick", model_spec: str = "smollm2", **options) -> pd.DataFrame:
    """`estimate(...)` as a table, one row per stage and a total row."""
    return estimate(suite_or_stages, model_spec, **options).to_frame()
