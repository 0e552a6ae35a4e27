"""Evaluation: metrics, exact oracles, one evaluation for every text process, and the frontier measurements."""
