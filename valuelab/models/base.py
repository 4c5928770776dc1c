"""The one interface every backend implements: batched forced-choice probabilities and batched sampling."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from valuelab.prompts import LABELS, parse_choice

LOW_MASS = 0.5
"""Below this P(A)+P(B) the model wanted to say something else; results are flagged, not renormalised away."""


@dataclass(frozen=True)
class ChoiceRequest:
    """One forced-choice question as shown to the model.

    `prompt` is the user message and `system` an optional system message. `labels` are the answer tokens the
    model may give ("A", "B" for a pairwise choice; "1".."6" for a rating scale) and `options` what each label
    stands for, in the same order (outcome texts, or the scale values shown forward or reversed). `subject` is
    the thing being rated, for rating items. The synthetic agent and the reports use `options` and `subject`.
    """

    prompt: str
    options: tuple[str, ...] | None = None
    system: str | None = None
    labels: tuple[str, ...] = LABELS
    subject: str | None = None

    def messages(self) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": self.prompt}]


@dataclass
class ChoiceResult:
    """The model's answer to one forced choice, one entry per label in `labels` order.

    In log-prob mode `logps` are full-vocabulary log-probabilities of each label (all its surface variants
    combined with logsumexp), `mass` is their total probability and `top` the raw top tokens. In sample mode
    `counts` are the parsed answers: `mass` is the share of samples that named a label, the rest are
    `n_refusal`, and `texts` keeps the first few raw answers. `probs` is renormalised over the labels.
    """

    probs: list[float]
    mass: float
    mode: str
    labels: tuple[str, ...] = LABELS
    logps: list[float] | None = None
    counts: list[int] | None = None
    n_refusal: int = 0
    top: list[tuple[str, float]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    bound_used: bool = False

    @property
    def p_a(self) -> float:
        return self.probs[0]

    @property
    def p_b(self) -> float:
        return self.probs[1]

    @property
    def logp_a(self) -> float | None:
        return self.logps[0] if self.logps else None

    @property
    def logp_b(self) -> float | None:
        return self.logps[1] if self.logps else None

    @property
    def n_a(self) -> int:
        return self.counts[0] if self.counts else 0

    @property
    def n_b(self) -> int:
        return self.counts[1] if self.counts else 0

    @property
    def low_mass(self) -> bool:
        return self.mass < LOW_MASS

    def expected_value(self, values: Sequence[float]) -> float:
        """Mean of `values` (one per label) under the renormalised label probabilities: a rating's expectation."""
        return float(sum(p * v for p, v in zip(self.probs, values, strict=True)))

    def to_json(self) -> dict:
        # Field by field, lists copied one level: dataclasses.asdict deep-copies every value recursively, which
        # was the largest cost per answer stored at API speeds (benchmarks/bench_openai.py).
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), list | tuple) else v
                for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict) -> ChoiceResult:
        data = dict(data)
        data["labels"] = tuple(data["labels"])
        data["top"] = [tuple(t) for t in data.get("top", [])]
        return cls(**data)

    @classmethod
    def from_logprobs(cls, logps: Sequence[float], top: list[tuple[str, float]], bound_used: bool = False,
                      labels: tuple[str, ...] = LABELS) -> ChoiceResult:
        logps = [float(v) for v in logps]
        hi = max(logps)
        if hi == -math.inf:
            probs = [1.0 / len(logps)] * len(logps)
        else:
            weights = [math.exp(v - hi) for v in logps]
            probs = [w / sum(weights) for w in weights]
        return cls(probs=probs, mass=sum(math.exp(v) for v in logps), mode="logprob", labels=labels, logps=logps,
                   top=top, bound_used=bound_used)

    @classmethod
    def from_samples(cls, texts: Sequence[str], labels: tuple[str, ...] = LABELS) -> ChoiceResult:
        parsed = [parse_choice(t, labels) for t in texts]
        counts = [parsed.count(label) for label in labels]
        answered = sum(counts)
        probs = [c / answered for c in counts] if answered else [1.0 / len(labels)] * len(labels)
        return cls(probs=probs, mass=answered / len(parsed) if parsed else 0.0, mode="sample", labels=labels,
                   counts=counts, n_refusal=len(parsed) - answered, texts=[t[:200] for t in texts[:3]])


class Backend(ABC):
    """A model that answers forced choices.

    Subclasses set `kind` and implement `identity`, `render`, `_choice_probs` and `sample`. Everything that talks
    to a model goes through `valuelab.store.StoredModel`, which keys requests on `identity()` and `render()`.
    """

    kind: str = "base"
    supports_logprobs: bool = True
    concurrent: bool = False
    """True for backends that keep many requests in flight themselves (API clients): the executor hands them all
    of a call's missing requests at once through `stream` and commits answers as they come back."""

    @abstractmethod
    def identity(self) -> dict[str, str]:
        """Backend kind, model name and revision: the part of the store key that says who answered."""

    @abstractmethod
    def render(self, request: ChoiceRequest) -> str:
        """The exact text (or canonical JSON) the model sees for `request`."""

    @abstractmethod
    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Next-token label probabilities for each request, in order."""

    @abstractmethod
    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        """`n` free-text completions for each request."""

    def stream(self, method: str, requests: Sequence[ChoiceRequest], args: tuple = ()) -> Iterator[tuple[int, Any]]:
        """(position in `requests`, answer) for each request, in any order, as answers come back: `method` is
        `_choice_probs` or `sample` (`args` are sample's n, temperature, max_tokens, seed). This default asks
        them all in one call; `concurrent` backends yield each answer as it arrives."""
        yield from enumerate(getattr(self, method)(requests, *args))

    def choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Log-prob answers where the model gives log-probabilities, else the sampling fallback."""
        if not requests:
            return []
        if self.supports_logprobs:
            return self._choice_probs(requests)
        return self.sample_choices(requests, n=10)

    def sample_choices(self, requests: Sequence[ChoiceRequest], n: int = 10, temperature: float = 1.0,
                       seed: int = 0) -> list[ChoiceResult]:
        """Sampling mode: `n` completions per request, parsed into a label or REFUSAL and counted."""
        return [ChoiceResult.from_samples(texts, r.labels)
                for r, texts in zip(requests, self.sample(requests, n, temperature, seed=seed), strict=True)]

    def close(self) -> None:  # noqa: B027  (optional hook: most backends hold nothing to release)
        """Release servers, threads or GPU memory held by the backend."""
