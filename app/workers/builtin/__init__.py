"""The built-in workers. Importing this package imports every module in it, which registers
their workers in `app.workers.registry`: a worker added as a new module here needs no other
edit."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
