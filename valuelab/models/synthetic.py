"""A Thurstonian agent with known utilities, for validating methods and planning query budgets.

Each outcome text gets a utility mean ~ N(0, 1) and a variance ~ LogNormal(log noise², 0.5²), both drawn from a
hash of (seed, text), so any outcome set works and the truth is recoverable with `utility(text)`; or the truth
is planted with `utilities={text: (mean, variance)}`. In a pairwise choice the agent picks label A with
probability Φ((μ_A − μ_B) / √(σ_A² + σ_B²) + position_bias). Rating a `subject` on a scale (the request's
`options` are the scale values each label stands for), it centres on mid + half-range · tanh(μ_subject) with
spread √σ² of the scale's half-range, and `position_bias` favours the first label shown. It gives a non-label
answer with probability `refusal_rate`. It behaves like any other backend: log-probs or samples, through the
store.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from valuelab.errors import InputError
from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


OPEN_CHOICE_DRAWS = 4000
"""Draws behind the synthetic agent's choice probabilities among more than two options."""


class SyntheticBackend(Backend):
    kind = "synthetic"

    def __init__(self, seed: int = 0, *, noise: float = 0.5, position_bias: float = 0.0,
                 refusal_rate: float = 0.0, utilities: dict[str, tuple[float, float]] | None = None):
        if not 0.0 <= refusal_rate < 1.0:
            raise InputError(f"refusal_rate must be in [0, 1), got {refusal_rate}", field="refusal_rate")
        self.seed, self.noise, self.position_bias, self.refusal_rate = seed, noise, position_bias, refusal_rate
        self.truth = dict(utilities or {})

    def identity(self) -> dict[str, str]:
        params = f"noise={self.noise},bias={self.position_bias},refusal={self.refusal_rate}"
        if self.truth:
            params += ",truth=" + hashlib.sha256(json.dumps(sorted(self.truth.items())).encode()).hexdigest()[:12]
        return {"backend": self.kind, "model": f"synthetic:{self.seed}", "revision": params}

    def render(self, request: ChoiceRequest) -> str:
        return json.dumps(request.messages(), ensure_ascii=False)

    def utility(self, text: str) -> tuple[float, float]:
        """The agent's true (mean, variance) for an outcome text."""
        if text not in self.truth:
            rng = _rng("utility", self.seed, text)
            self.truth[text] = (float(rng.normal()), float(self.noise**2 * math.exp(0.5 * rng.normal())))
        return self.truth[text]

    def label_probs(self, request: ChoiceRequest) -> np.ndarray:
        """P(label | the agent answers with a label), in the request's label order."""
        if request.options is None or len(request.options) != len(request.labels):
            raise InputError("the synthetic agent needs what each label stands for (ChoiceRequest.options)")
        if request.subject is None and len(request.options) > 2:
            return self.open_choice_probs(request.options)
        if request.subject is None:
            (mu_a, var_a), (mu_b, var_b) = (self.utility(t) for t in request.options)
            p = float(norm.cdf((mu_a - mu_b) / math.sqrt(var_a + var_b) + self.position_bias))
            return np.array([p, 1.0 - p])
        values = np.array([float(v) for v in request.options])
        mu, var = self.utility(request.subject)
        mid, half = (values.max() + values.min()) / 2, (values.max() - values.min()) / 2
        logits = -((values - (mid + half * math.tanh(mu))) ** 2) / (2 * var * half**2)
        logits[0] += self.position_bias
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def open_choice_probs(self, options: Sequence[str], draws: int = OPEN_CHOICE_DRAWS) -> np.ndarray:
        """P(each option is the one the agent picks from the list): the chance its utility, drawn from the
        agent's Thurstonian N(mean, variance), is the highest (Thurstone's multinomial Case III choice),
        estimated from seeded draws so the same list always gets the same probabilities."""
        mean, var = np.array([self.utility(t) for t in options]).T
        draws_ = _rng("open-choice", self.seed, *options).normal(mean, np.sqrt(var), (draws, len(options)))
        return np.bincount(draws_.argmax(axis=1), minlength=len(options)) / draws

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        mass = 1.0 - self.refusal_rate
        return [ChoiceResult.from_logprobs(np.log(np.clip(self.label_probs(r), 1e-12, 1) * mass), [],
                                           labels=r.labels) for r in requests]

    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        out = []
        for request in requests:
            probs = self.label_probs(request)
            rng = _rng("sample", self.seed, seed, request.prompt, request.options)
            refuse = rng.random(n) < self.refusal_rate
            picks = rng.choice(len(probs), size=n, p=probs)
            out.append(["I would rather not choose." if r else request.labels[k]
                        for r, k in zip(refuse, picks, strict=True)])
        return out
