"""Pairwise forced choices between outcomes, always in both answer orders.

The order-debiased preference is P(x ≻ y) = ½[P(A | x shown as A) + 1 − P(A | y shown as A)], and the
position bias ½[P(A | x first) + P(A | y first)] − ½ is reported beside it, never hidden (reference/tooling.md
§2.0, following Zheng et al. 2023 on selection bias).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from valuelab.models.base import ChoiceRequest, ChoiceResult
from valuelab.prompts import DEFAULT_TEMPLATE, Template, get_template
from valuelab.store import StoredModel


@dataclass
class PairPreference:
    """One unordered pair asked both ways: `forward` shows `first` as A, `backward` shows `second` as A."""

    first: str
    second: str
    forward: ChoiceResult
    backward: ChoiceResult

    @property
    def p_first(self) -> float:
        """Order-debiased P(first ≻ second)."""
        return 0.5 * (self.forward.p_a + 1.0 - self.backward.p_a)

    @property
    def position_bias(self) -> float:
        """How far the model leans to label A, in probability: 0 is none, +0.5 always A, −0.5 always B."""
        return 0.5 * (self.forward.p_a + self.backward.p_a) - 0.5

    @property
    def mass(self) -> float:
        """The smaller choice mass of the two orders."""
        return min(self.forward.mass, self.backward.mass)

    def to_row(self) -> dict:
        return {"first": self.first, "second": self.second, "p_first": self.p_first,
                "position_bias": self.position_bias,
                "p_a_forward": self.forward.p_a, "mass_forward": self.forward.mass,
                "p_a_backward": self.backward.p_a, "mass_backward": self.backward.mass,
                "low_mass": self.forward.low_mass or self.backward.low_mass,
                "refusals": self.forward.n_refusal + self.backward.n_refusal, "mode": self.forward.mode}


def pair_requests(first: str, second: str, template: str | Template = DEFAULT_TEMPLATE,
                  system: str | None = None) -> tuple[ChoiceRequest, ChoiceRequest]:
    """The two ordered questions for one pair: (first as A, second as B) and the reverse."""
    t = template if isinstance(template, Template) else get_template(template)
    return (ChoiceRequest(t.render(first, second), (first, second), system),
            ChoiceRequest(t.render(second, first), (second, first), system))


def prefer_pairs(model: StoredModel, pairs: Sequence[tuple[str, str]], template: str | Template = DEFAULT_TEMPLATE,
                 system: str | None = None) -> list[PairPreference]:
    """Ask every pair in both orders, through the store, in one batch."""
    requests = [r for first, second in pairs for r in pair_requests(first, second, template, system)]
    results = model.choice_probs(requests)
    return [PairPreference(first, second, results[2 * i], results[2 * i + 1])
            for i, (first, second) in enumerate(pairs)]


def prefer(model: StoredModel, first: str, second: str, template: str | Template = DEFAULT_TEMPLATE,
           system: str | None = None) -> PairPreference:
    """One forced choice, both orders, debiased."""
    return prefer_pairs(model, [(first, second)], template, system)[0]


def preferences_frame(preferences: Sequence[PairPreference]) -> pd.DataFrame:
    return pd.DataFrame([p.to_row() for p in preferences])
