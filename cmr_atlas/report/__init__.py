"""Cohort report: figures (figures.py) and the HTML page (html.py); ``cmr-atlas report`` (cli.py)."""
