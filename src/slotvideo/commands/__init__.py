"""Verb implementations of the ``slotvideo`` command line (one module per verb)."""
