"""The vocabularies items are tagged and keyed with: Schwartz's values, the moral foundations and the poles of
the Inglehart-Welzel cultural map. Pure constants, so item files can be validated against them without any
scoring code; `valuelab.frameworks` re-exports them beside the scoring.

Schwartz structure from Schwartz et al. (2012), "Refining the theory of basic individual values", JPSP 103:663,
and the PVQ-RR coding instructions (Schwartz 2021): humility pools into tradition for the 10-value key, face
into power; humility and face are boundary values kept outside the higher-order scores. Moral foundations in
the six-foundation form of MFQ-2 (Atari et al. 2023) plus liberty (Iyer et al. 2012; Haidt 2012). The cultural
map's two bipolar dimensions after Inglehart & Welzel (2005). Maslow's five needs (Maslow 1943, "A theory of
human motivation"), Aristotle's virtues of character (Nicomachean Ethics II.7 and IV) and Plutchik's wheel of
emotions (Plutchik 1980, eight primary emotions and their eight primary dyads) in the form DailyDilemmas maps
onto (Chiu, Jiang & Choi 2025, App. A.2).
"""

from __future__ import annotations

# ---------------------------------------------------------------- Schwartz

REFINED_VALUES: dict[str, str] = {
    "self-direction-thought": "self-direction",
    "self-direction-action": "self-direction",
    "stimulation": "stimulation",
    "hedonism": "hedonism",
    "achievement": "achievement",
    "power-dominance": "power",
    "power-resources": "power",
    "face": "power",
    "security-personal": "security",
    "security-societal": "security",
    "tradition": "tradition",
    "conformity-rules": "conformity",
    "conformity-interpersonal": "conformity",
    "humility": "tradition",
    "benevolence-caring": "benevolence",
    "benevolence-dependability": "benevolence",
    "universalism-concern": "universalism",
    "universalism-nature": "universalism",
    "universalism-tolerance": "universalism",
}
"""Refined value -> basic value, in circular order around the circumplex."""

BASIC_VALUES: list[str] = [
    "self-direction", "stimulation", "hedonism", "achievement", "power",
    "security", "conformity", "tradition", "benevolence", "universalism",
]
"""The 10 basic values in circumplex order."""

HIGHER_ORDER: dict[str, list[str]] = {
    "openness-to-change": ["self-direction-thought", "self-direction-action", "stimulation", "hedonism"],
    "self-enhancement": ["achievement", "power-dominance", "power-resources"],
    "conservation": ["security-personal", "security-societal", "tradition", "conformity-rules",
                     "conformity-interpersonal"],
    "self-transcendence": ["universalism-nature", "universalism-concern", "universalism-tolerance",
                           "benevolence-caring", "benevolence-dependability"],
}
"""Higher-order value -> its refined values (PVQ-RR key; face and humility excluded as boundary values)."""

# ---------------------------------------------------------------- moral foundations

FOUNDATIONS: list[str] = ["care", "equality", "proportionality", "loyalty", "authority", "purity", "liberty"]
"""MFQ-2's six foundations (fairness split into equality and proportionality) plus liberty."""

INDIVIDUALISING: list[str] = ["care", "equality"]
BINDING: list[str] = ["loyalty", "authority", "purity"]

# ---------------------------------------------------------------- cultural map

POLES: dict[str, tuple[str, str]] = {
    "trad-secular": ("traditional", "secular-rational"),
    "surv-selfexp": ("survival", "self-expression"),
}
"""Dimension -> (negative pole, positive pole)."""

POLE_NAMES: list[str] = [pole for pair in POLES.values() for pole in pair]

# ---------------------------------------------------------------- Maslow, Aristotle, Plutchik (DailyDilemmas)

MASLOW_NEEDS: list[str] = ["physiological", "safety", "love-belonging", "esteem", "self-actualization"]
"""Maslow's hierarchy, lowest need first."""

VIRTUES: list[str] = [
    "courage", "temperance", "liberality", "ambition", "patience", "truthfulness", "wittiness",
    "friendliness", "modesty", "righteous-indignation",
]
"""Aristotle's virtues of character as DailyDilemmas lists them: magnificence merged into liberality and
magnanimity into (proper) ambition; patience is his good temper (praotes)."""

PRIMARY_EMOTIONS: list[str] = ["joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation"]
"""Plutchik's eight primary emotions, in order around the wheel."""

EMOTIONS: list[str] = PRIMARY_EMOTIONS + [
    "love", "submission", "awe", "disapproval", "remorse", "contempt", "aggressiveness", "optimism",
]
"""The primary emotions, then the primary dyads between neighbours (joy+trust = love, trust+fear = submission,
fear+surprise = awe, surprise+sadness = disapproval, sadness+disgust = remorse, disgust+anger = contempt,
anger+anticipation = aggressiveness, anticipation+joy = optimism)."""
