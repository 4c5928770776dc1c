"""Moral Foundations Theory, in the six-foundation form of MFQ-2 (Atari et al. 2023) plus liberty.

MFQ-2 splits fairness into equality and proportionality; liberty is the sixth foundation proposed
by Iyer et al. (2012) and Haidt (2012). The vocabularies live in `valuelab.items.vocabularies` (item files
are validated against them) and are re-exported here.
"""

from valuelab.items.vocabularies import BINDING, FOUNDATIONS, INDIVIDUALISING

__all__ = ["BINDING", "FOUNDATIONS", "INDIVIDUALISING"]
