"""The likelihood families a fit can use (see `valuelab.fit.thurstonian` for their math): names only, so the
command line can list them without importing torch."""

FAMILIES = ("thurstonian", "case5", "bradley-terry")
