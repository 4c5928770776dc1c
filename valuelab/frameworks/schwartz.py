"""Schwartz's theory of basic values: the 19 refined values, the 10 basic values and the 4 higher-order values.

Structure from Schwartz et al. (2012), "Refining the theory of basic individual values", JPSP 103:663,
and the PVQ-RR coding instructions (Schwartz 2021): humility pools into tradition for the 10-value key,
face into power; humility and face are boundary values kept outside the higher-order scores.
"""

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
