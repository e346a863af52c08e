"""Cameras and files to person boxes: frame sources, the detectors and the choice between them,
appearance embeddings, demographics.
"""
