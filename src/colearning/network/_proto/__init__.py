"""Generated from ``colearning.proto`` by ``python -m colearning.network.regenerate``; do not
edit. Nothing outside :mod:`colearning.network` imports these modules."""
