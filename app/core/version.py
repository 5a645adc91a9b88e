"""The service's version, from the installed package's metadata (pyproject.toml)."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("aevatar-worker")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0.0.0+source"
