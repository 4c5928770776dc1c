"""A planted synthetic assembly for validating control: 15 members who prefer outcomes about animals to
outcomes about money, over 12 outcomes written here, so a fine-tuning run has a known target without first
running an assembly on a model. Used by the fine-tuning tests and `benchmarks/bench_finetune.py`."""

from __future__ import annotations

from valuelab.control.assembly import build_assembly
from valuelab.control.targets import Targets
from valuelab.elicit.outcomes import Outcome
from valuelab.models.synthetic import SyntheticBackend
from valuelab.prompts import Template
from valuelab.store import StoredModel

TEMPLATE = Template("short-choice", "Which is better?\nA: {option_a}\nB: {option_b}\nAnswer A or B.")
ANIMALS = ["A lost dog is returned to its family.", "A bird's broken wing heals.",
           "A shelter cat is adopted.", "A stranded whale swims back to sea.",
           "A rescued horse gets a green field.", "Ducklings cross the road safely."]
MONEY = ["You receive a bonus of $500.", "You find a $20 bill.", "Your rent drops by $100 a month.",
         "You win $1,000 in a raffle.", "Your savings earn extra interest.", "You get a $200 tax refund."]
OUTCOMES = ([Outcome(f"animal-{k}", t, "animals") for k, t in enumerate(ANIMALS)]
            + [Outcome(f"money-{k}", t, "money") for k, t in enumerate(MONEY)])
PLANTED = {o.text: ((1.0 if o.category == "animals" else -1.0) + 0.3 * (k % 6 - 2.5) / 2.5, 0.25)
           for k, o in enumerate(OUTCOMES)}
"""Planted (mean, variance) per outcome text: animals about +1, money about -1, spread within each group."""


def planted_targets(size: int = 15, seed: int = 0) -> Targets:
    """The assembly's targets (training and held-out pairs with the majority's shares) under ``TEMPLATE``."""
    return build_assembly(StoredModel(SyntheticBackend(1, utilities=PLANTED)), size=size, outcomes=OUTCOMES,
                          seed=seed, template=TEMPLATE).targets
