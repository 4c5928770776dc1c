"""Our own dilemma sets, packaged as valuelab.dilemmas (see SCHEMA.md)."""
