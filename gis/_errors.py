"""Problems found in a planner's input, and the exceptions that carry them.

Every check in the package collects :class:`Problem` records instead of raising at the first one,
so that a planner sees everything that is wrong with their layers in one go.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


def suggest(key: str, allowed: Iterable[str]) -> str:
    """Hint for an unknown key or name: the closest allowed one, then all of them (sorted).

    Examples
    --------
    >>> suggest("module_efficency", ["module_efficiency", "setback_m"])
    "did you mean 'module_efficiency'? allowed: module_efficiency, setback_m"
    >>> suggest("zzz", ["b", "a"])
    'allowed: a, b'
    """
    import difflib

    allowed = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(key), allowed, n=1)
    options = ", ".join(sorted(allowed))
    return f"did you mean {close[0]!r}? allowed: {options}" if close else f"allowed: {options}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth knowing) about an input.

    Parameters
    ----------
    message : str
        What is wrong, in a planner's words.
    hint : str
        What to do about it.
    file, layer, column : str, optional
        Where it is.
    value : object, optional
        The offending value (shown with ``repr``-like quoting).
    severity : {"error", "warning"}
        Errors stop the run; warnings are reported and the run goes on.
    """

    message: str
    hint: str = ""
    file: str | None = None
    layer: str | None = None
    column: str | None = None
    value: object = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.layer:
            where.append(f"layer {self.layer!r}")
        if self.column:
            where.append(f"column {self.column!r}")
        head = f"{self.severity}: " + (", ".join(where) + ": " if where else "")
        text = head + self.message
        if self.value is not None:
            text += f" (value: {self.value!r})"
        if self.hint:
            text += f" -> {self.hint}"
        return text


@dataclass
class Problems:
    """A collector of :class:`Problem` records."""

    items: list[Problem] = field(default_factory=list)

    def add(self, message: str, **kw) -> None:
        self.items.append(Problem(message, **kw))

    def warn(self, message: str, **kw) -> None:
        self.items.append(Problem(message, severity="warning", **kw))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise InputError(self.items)


class InputError(ValueError):
    """Bad input: a layer, a run file or a parameter a planner must fix.

    Carries every problem found (errors and warnings), not only the first.
    The command line prints each one on its own line and exits with code 2.
    """

    def __init__(self, problems: Iterable[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


class RunFileError(InputError):
    """A run file (or targets file) that cannot be used."""
