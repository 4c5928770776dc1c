"""Plutchik's wheel of emotions (Plutchik 1980, "Emotion: a psychoevolutionary synthesis"; 2001, American
Scientist 89:344): eight primary emotions in order around the wheel, then the eight primary dyads between
neighbours (joy + trust = love, ..., anticipation + joy = optimism).

The sixteen emotions DailyDilemmas maps its values onto (Chiu, Jiang & Choi 2025, App. A.2). The vocabularies
live in `valuelab.items.vocabularies` (item files are validated against them) and are re-exported here.
"""

from valuelab.items.vocabularies import EMOTIONS, PRIMARY_EMOTIONS

__all__ = ["EMOTIONS", "PRIMARY_EMOTIONS"]
