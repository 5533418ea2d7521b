"""Plots of an experiment (needs ``colearning[report]``: matplotlib)."""
