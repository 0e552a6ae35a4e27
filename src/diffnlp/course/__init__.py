"""The course layer: what only the notebooks need (widgets, plots, exercise checkers, ``show``)."""
