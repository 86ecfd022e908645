"""gis-planner: rooftop PV potential and ecological-barrier accounting for carbon-peak planning."""

from gis._errors import InputError, Problem

__version__ = "0.1.0"

__all__ = ["InputError", "Problem", "__version__"]
