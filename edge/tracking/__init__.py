"""Boxes to tracks: the tracker, its re-identification, and the one table of track lifetimes."""
