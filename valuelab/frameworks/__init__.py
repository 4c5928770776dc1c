"""Value frameworks: Schwartz basic values, Moral Foundations, the Inglehart-Welzel cultural map, and the three
more theories DailyDilemmas scores on: Maslow's needs, Aristotle's virtues, Plutchik's emotions."""
