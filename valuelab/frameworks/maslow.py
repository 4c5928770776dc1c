"""Maslow's hierarchy of needs (Maslow 1943, "A theory of human motivation", Psychological Review 50:370):
physiological, safety, love and belonging, esteem, self-actualization, lowest first.

The five needs as DailyDilemmas maps its values onto them (Chiu, Jiang & Choi 2025, App. A.2; their
"self-esteem" is our `esteem`, "love and belonging" our `love-belonging`). The vocabulary lives in
`valuelab.items.vocabularies` (item files are validated against it) and is re-exported here.
"""

from valuelab.items.vocabularies import MASLOW_NEEDS

__all__ = ["MASLOW_NEEDS"]
