"""Speed and memory benchmark of the unoptimised, exact and fast paths (``python -m timellm_core bench``).

Used by the command line and ``benchmarks/`` only; the library's model and training never import it.
"""
