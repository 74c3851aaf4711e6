"""Servicers: translate proto <-> domain, nothing else."""
