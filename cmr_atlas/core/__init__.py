"""Shared infrastructure of every pipeline: geometry, tables, vocabulary, ids, config, runner.

Nothing here imports from another cmr_atlas subpackage.
"""
