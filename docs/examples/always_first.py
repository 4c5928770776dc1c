"""A backend that always answers with the first label: pure position bias, no preferences at all.

The worked backend example of docs/CONTRIBUTING.md: one file, and one line in `valuelab.models.PROVIDERS`
(`Provider("always-first", "always-first", "docs.examples.always_first:AlwaysFirst", "numpy",
"answers A whatever A is", named=False)`) registers it.
It is a useful sanity check too: every analysis should score it at or below its random baseline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult


class AlwaysFirst(Backend):
    kind = "always-first"

    def __init__(self, name: str = "", *, confidence: float = 0.99):
        self.confidence = confidence

    def identity(self) -> dict[str, str]:
        return {"backend": self.kind, "model": "always-first", "revision": f"confidence={self.confidence}"}

    def render(self, request: ChoiceRequest) -> str:
        return json.dumps(request.messages(), ensure_ascii=False)

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        out = []
        for r in requests:
            rest = (1 - self.confidence) / (len(r.labels) - 1)
            probs = np.array([self.confidence] + [rest] * (len(r.labels) - 1))
            out.append(ChoiceResult.from_logprobs(np.log(probs), [], labels=r.labels))
        return out

    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        return [[r.labels[0]] * n for r in requests]
