"""The one interface every backend implements: batched forced-choice probabilities and batched sampling."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from valuelab.prompts import LABELS, parse_choice

LOW_MASS = 0.5
"""Below this P(A)+P(B) the model wanted to say something else; results are flagged, not renormalised away."""


@dataclass(frozen=True)
class ChoiceRequest:
    """One forced-choice question as shown to the model.

    `prompt` is the user message; `options` are the texts behind labels A and B (the synthetic agent and
    the reports need them); `system` is an optional system message.
    """

    prompt: str
    options: tuple[str, str] | None = None
    system: str | None = None

    def messages(self) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": self.prompt}]


@dataclass
class ChoiceResult:
    """The model's answer to one forced choice.

    In log-prob mode `logp_a`/`logp_b` are full-vocabulary log-probabilities of the label (all surface variants
    combined with logsumexp), `mass` = P(A)+P(B) and `top` the raw top tokens. In sample mode they come from
    counts: `mass` is the share of samples that named a label, the rest are `n_refusal`; `texts` keeps the first
    few raw answers.
    """

    p_a: float
    mass: float
    mode: str
    logp_a: float | None = None
    logp_b: float | None = None
    top: list[tuple[str, float]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    bound_used: bool = False
    n_a: int = 0
    n_b: int = 0
    n_refusal: int = 0

    @property
    def p_b(self) -> float:
        return 1.0 - self.p_a

    @property
    def low_mass(self) -> bool:
        return self.mass < LOW_MASS

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ChoiceResult:
        data = dict(data)
        data["top"] = [tuple(t) for t in data.get("top", [])]
        return cls(**data)

    @classmethod
    def from_logprobs(cls, logp_a: float, logp_b: float, top: list[tuple[str, float]],
                      bound_used: bool = False) -> ChoiceResult:
        hi = max(logp_a, logp_b)
        if hi == -math.inf:
            return cls(p_a=0.5, mass=0.0, mode="logprob", logp_a=logp_a, logp_b=logp_b, top=top,
                       bound_used=bound_used)
        ea, eb = math.exp(logp_a - hi), math.exp(logp_b - hi)
        return cls(p_a=ea / (ea + eb), mass=math.exp(logp_a) + math.exp(logp_b), mode="logprob",
                   logp_a=logp_a, logp_b=logp_b, top=top, bound_used=bound_used)

    @classmethod
    def from_samples(cls, texts: Sequence[str]) -> ChoiceResult:
        parsed = [parse_choice(t) for t in texts]
        n_a, n_b = parsed.count(LABELS[0]), parsed.count(LABELS[1])
        n_refusal = len(parsed) - n_a - n_b
        answered = n_a + n_b
        return cls(p_a=n_a / answered if answered else 0.5, mass=answered / len(parsed) if parsed else 0.0,
                   mode="sample", n_a=n_a, n_b=n_b, n_refusal=n_refusal,
                   texts=[t[:200] for t in texts[:3]])


class Backend(ABC):
    """A model that answers forced choices.

    Subclasses set `kind` and implement `identity`, `render`, `_choice_probs` and `sample`. Everything that talks
    to a model goes through `valuelab.store.StoredModel`, which keys requests on `identity()` and `render()`.
    """

    kind: str = "base"
    supports_logprobs: bool = True

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

    def choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Log-prob answers where the model gives log-probabilities, else the sampling fallback."""
        if not requests:
            return []
        if self.supports_logprobs:
            return self._choice_probs(requests)
        return self.sample_choices(requests, n=10)

    def sample_choices(self, requests: Sequence[ChoiceRequest], n: int = 10, temperature: float = 1.0,
                       seed: int = 0) -> list[ChoiceResult]:
        """Sampling mode: `n` completions per request, parsed into A, B or REFUSAL and counted."""
        return [ChoiceResult.from_samples(texts) for texts in self.sample(requests, n, temperature, seed=seed)]

    def close(self) -> None:  # noqa: B027  (optional hook: most backends hold nothing to release)
        """Release servers, threads or GPU memory held by the backend."""
