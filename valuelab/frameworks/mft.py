"""Moral Foundations Theory, in the six-foundation form of MFQ-2 (Atari et al. 2023) plus liberty.

MFQ-2 splits fairness into equality and proportionality; liberty is the sixth foundation proposed
by Iyer et al. (2012) and Haidt (2012).
"""

FOUNDATIONS: list[str] = ["care", "equality", "proportionality", "loyalty", "authority", "purity", "liberty"]

INDIVIDUALISING: list[str] = ["care", "equality"]
BINDING: list[str] = ["loyalty", "authority", "purity"]
