"""Checkers for the notebooks' "Try it" exercises, with their reference solutions.

One module per lesson (``lesson01`` ... ``lesson07``). A checker takes the learner's answer and returns a
``Verdict`` whose status is "not attempted" (the stub still raises NotImplementedError or returns None),
"correct" or "incorrect"; it never raises. Each ``check_NAME`` has a ``reference_NAME``: the reference
solution, which the tests show every checker accepts. Stuck? Read the reference with
``diffnlp.course.show.show(reference_NAME)``.
"""

from __future__ import annotations

from importlib import import_module

from ._verdict import NOT_ATTEMPTED, Verdict

LESSONS = ("lesson01", "lesson02", "lesson03", "lesson04", "lesson05", "lesson06", "lesson07")

__all__ = ["NOT_ATTEMPTED", "Verdict", "LESSONS"]
for _lesson in LESSONS:
    _module = import_module(f".{_lesson}", __name__)
    for _name in dir(_module):
        if _name.startswith(("check_", "reference_")):
            globals()[_name] = getattr(_module, _name)
            __all__.append(_name)
del _lesson, _module, _name
