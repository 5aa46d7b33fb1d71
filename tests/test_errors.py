"""Every named error of the package derives from ``SegnasError``, so ``segnas`` catches them all once."""
import importlib
import inspect
import pkgutil

import segnas_lite
from segnas_lite.errors import SegnasError


def _modules():
    for info in pkgutil.walk_packages(segnas_lite.__path__, prefix="segnas_lite."):
        if info.name.rsplit(".", 1)[-1] == "__main__":  # running it would run the command
            continue
        yield importlib.import_module(info.name)


def test_every_error_class_derives_from_segnas_error():
    errors = [cls for module in _modules() for _, cls in inspect.getmembers(module, inspect.isclass)
              if cls.__module__ == module.__name__ and issubclass(cls, Exception)
              and not issubclass(cls, Warning)]  # warnings are not errors (BusyMachineWarning)
    assert len(errors) > 10  # the walk found the package's errors
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in errors
              if not issubclass(cls, SegnasError)]
    assert not strays, f"errors that do not derive from SegnasError: {strays}"
