"""Pure analytics of tracks: lines, zones, paths, heatmaps, window aggregates, the detector
cadence.
"""
