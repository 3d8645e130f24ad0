"""Featurise a lake of many clusters and days, in this process or on a Dask cluster.

A partition is one (cluster, day) of the lake (:mod:`sources.lake`). History moves between
days as a small state (:mod:`engine.history`), so each task holds one day of one cluster.
"""
