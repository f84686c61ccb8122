"""Analyses built on the hook layer: the disruption probe, token clusters, transport and their metrics."""
