"""Names a package loads on first use (PEP 562 module ``__getattr__``), so that importing the package
imports no TensorFlow until a name that needs it is read."""
import importlib


def lazy_attribute(package: str, public: dict, name: str):
    """The value of ``package.name``: ``public[name]`` names the submodule defining it; any other name is a
    submodule of ``package`` (AttributeError when there is none). The caller caches it in its globals."""
    if name in public:
        return getattr(importlib.import_module(f".{public[name]}", package), name)
    if name.startswith("__"):
        raise AttributeError(name)
    try:  # a submodule or subpackage, e.g. tfxattr.metrics
        return importlib.import_module(f".{name}", package)
    except ModuleNotFoundError as err:
        if err.name != f"{package}.{name}":
            raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
