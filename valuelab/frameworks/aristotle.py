"""Aristotle's virtues of character (Nicomachean Ethics II.7 and IV), each the mean between two vices.

The list DailyDilemmas maps its values onto (Chiu, Jiang & Choi 2025, App. A.2): magnificence merged into
liberality and magnanimity into (proper) ambition; patience is his good temper (praotes) and righteous
indignation (nemesis) closes the list. The vocabulary lives in `valuelab.items.vocabularies` (item files are
validated against it) and is re-exported here.
"""

from valuelab.items.vocabularies import VIRTUES

__all__ = ["VIRTUES"]
