"""The docstring examples of the package run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import gis

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: examples the package's docstrings hold at least (raise it when adding more)
MIN_EXAMPLES = 180
#: modules whose public functions carry examples (each must keep some)
DOCUMENTED = ("config", "io", "landuse", "ecology", "rooftop", "solar", "targets", "validate",
              "sites", "maps", "demo", "ground", "finance",
              "network", "horizon")
MODULES = sorted(m.name for m in pkgutil.iter_modules(gis.__path__))


@pytest.fixture(scope="module")
def results() -> dict[str, doctest.TestResults | None]:
    """Every module's doctests, run once (None: the module needs an optional dependency)."""
    out: dict[str, doctest.TestResults | None] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(f"gis.{name}")
        except ImportError:  # gis.distributed without dask
            out[name] = None
            continue
        # report=True prints each failing example with what it got
        out[name] = doctest.testmod(module, optionflags=FLAGS, verbose=False, report=True)
    return out


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_pass(results, name):
    if results[name] is None:
        pytest.skip(f"gis.{name} needs an optional dependency")
    assert results[name].failed == 0, f"gis.{name}: {results[name].failed} examples failed"


def test_public_api_has_examples(results):
    attempted = {name: r.attempted for name, r in results.items() if r is not None}
    assert sum(attempted.values()) >= MIN_EXAMPLES, attempted
    assert [name for name in DOCUMENTED if attempted[name] == 0] == []
