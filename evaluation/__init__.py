"""Offline evaluation of the classifier on the held-out split and real labelled data sets.
Used by ``cityrelay eval-classifier`` and the benchmarks; never imported by the running
service."""
