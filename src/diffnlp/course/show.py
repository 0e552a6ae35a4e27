"""``show(fn)``: the source of a short package function in a lesson cell, highlighted, under the equation its
docstring states, so the learner reads the lines that compute the formula the lesson just derived.

    from diffnlp.course.show import show
    show(MaskedDiffusion.reveal_probability)
"""

from __future__ import annotations

import html
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Source:
    """A function's source as a lesson shows it: its qualified name, file and first line, the equation lines
    of its docstring and the code. Rendered as highlighted HTML in a notebook, as plain text elsewhere."""

    name: str
    path: str
    lineno: int
    equations: list[str]
    code: str

    def __str__(self) -> str:
        head = f"# {self.name}  ({self.path}, line {self.lineno})"
        eq = "".join(f"#     {line}\n" for line in self.equations)
        return f"{head}\n{eq}{self.code}"

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        code = highlight(self.code, PythonLexer(), HtmlFormatter(noclasses=True, style="friendly", nowrap=False))
        eq = ""
        if self.equations:
            eq = ('<pre style="margin:4px 0;padding:6px 10px;background:#fff7e6;border-left:3px solid #e8743b;'
                  f'font-size:90%">{html.escape(chr(10).join(self.equations))}</pre>')
        return (f'<div class="diffnlp-show"><div style="font-family:monospace;color:#555;font-size:85%">'
                f"<b>{html.escape(self.name)}</b> &nbsp; {html.escape(self.path)}, line {self.lineno}</div>"
                f"{eq}{code}</div>")


def _equations(doc: str | None, body_indent: int) -> list[str]:
    """The lines of a docstring indented deeper than the function's body: where the package writes its
    equations (labml style)."""
    lines = (doc or "").splitlines()[1:]
    return [line.strip() for line in lines if line.strip() and len(line) - len(line.lstrip()) > body_indent]


def show(fn, max_lines: int = 60) -> Source:
    """The source of ``fn``, a function or method of ``diffnlp`` of at most ``max_lines`` lines, with the
    equations of its docstring; displayed highlighted in a notebook cell."""
    target = inspect.unwrap(getattr(fn, "__func__", fn))
    if not (inspect.isfunction(target) or inspect.isclass(target)):
        raise TypeError(f"show needs a function, method or class of diffnlp, got {type(fn).__name__} {fn!r:.60}")
    module = getattr(target, "__module__", "") or ""
    if not module.startswith("diffnlp"):
        raise ValueError(f"show displays the course package's own code; {target.__qualname__} is from {module!r}")
    lines, lineno = inspect.getsourcelines(target)
    if len(lines) > max_lines:
        raise ValueError(f"{target.__qualname__} has {len(lines)} lines, more than max_lines={max_lines}: show a "
                         "smaller function (a step, not a whole sampler), or raise max_lines")
    path = Path(inspect.getsourcefile(target)).resolve()
    try:
        where = "src/diffnlp/" + path.relative_to(PACKAGE_ROOT).as_posix()
    except ValueError:
        where = path.name
    return Source(name=f"{module}.{target.__qualname__}", path=where, lineno=lineno,
                  equations=_equations(target.__doc__, len(lines[0]) - len(lines[0].lstrip()) + 4),
                  code=textwrap.dedent("".join(lines)))
