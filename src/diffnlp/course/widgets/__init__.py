"""Widgets: points and digits, text as tokens, and word vectors; each with a static strip for the web."""
