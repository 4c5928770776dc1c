"""Value frameworks: Schwartz basic values, Moral Foundations, the Inglehart-Welzel cultural map."""
