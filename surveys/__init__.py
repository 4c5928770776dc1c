"""Our own survey instruments, packaged as valuelab.surveys (see SCHEMA.md)."""
