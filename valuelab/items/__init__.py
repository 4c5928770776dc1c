"""Item files: the outcome-free data every analysis asks about (dilemmas, survey instruments, the YAML item
lists of the analyses), with schemas and validation that name the file, line and field of every error.

This layer sits below everything that talks to a model: it reads and checks data, nothing else."""
