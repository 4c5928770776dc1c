"""A Thurstonian agent with known utilities, for validating methods and planning query budgets.

Each outcome text gets a utility mean ~ N(0, 1) and a variance ~ LogNormal(log noise², 0.5²), both drawn from a
hash of (seed, text), so any outcome set works and the truth is recoverable with `utility(text)`. The agent
picks label A with probability Φ((μ_A − μ_B) / √(σ_A² + σ_B²) + position_bias) and gives a non-label answer with
probability `refusal_rate`. It behaves like any other backend: log-probs or samples, through the store.
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

    def p_first(self, request: ChoiceRequest) -> float:
        """P(the agent answers A | it answers A or B)."""
        if request.options is None:
            raise InputError("the synthetic agent needs the option texts of each request (ChoiceRequest.options)")
        (mu_a, var_a), (mu_b, var_b) = (self.utility(t) for t in request.options)
        return float(norm.cdf((mu_a - mu_b) / math.sqrt(var_a + var_b) + self.position_bias))

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        out = []
        mass = 1.0 - self.refusal_rate
        for request in requests:
            p = min(max(self.p_first(request), 1e-12), 1 - 1e-12)
            out.append(ChoiceResult.from_logprobs(math.log(p * mass), math.log((1 - p) * mass), []))
        return out

    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        out = []
        for request in requests:
            p = self.p_first(request)
            rng = _rng("sample", self.seed, seed, request.prompt, request.options)
            refuse = rng.random(n) < self.refusal_rate
            first = rng.random(n) < p
            out.append(["I would rather not choose." if r else ("A" if f else "B")
                        for r, f in zip(refuse, first, strict=True)])
        return out
