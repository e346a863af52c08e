"""Offline runs and scores: analyze, eval and its suite, benchmarks, MOT ground truth, mosaics."""
