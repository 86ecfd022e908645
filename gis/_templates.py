"""The pages' templates (``gis/templates``), rendered by Jinja2 with autoescaping on.

Every value placed into a page goes through a template expression, so it is escaped by default;
only markup the package builds itself (charts as ``data:`` URIs, nested blocks rendered by these
same templates) is passed as :class:`markupsafe.Markup`.
"""

from __future__ import annotations

import math
from functools import cache

import jinja2
import pandas as pd
from markupsafe import Markup

__all__ = ["Markup", "environment", "render", "text"]


def text(value) -> str:
    """A value as text for a page; missing values (None, NaN, NA) become "–".

    Examples
    --------
    >>> text(None), text(float("nan")), text(3), text("<b>")
    ('–', '–', '3', '<b>')
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return str(value)


@cache
def environment() -> jinja2.Environment:
    """The shared environment: package templates, autoescape on, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["text"] = text
    return env


def render(name: str, **context) -> str:
    """Render the template ``name`` (a path under ``gis/templates``) with ``context``."""
    return environment().get_template(name).render(**context)
