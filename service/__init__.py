"""Herald: the event, notification and webhook-delivery hub."""

import sys

# Optional extras of our dependencies that Herald never uses, each imported only because a
# development tool happens to have installed what it needs (docs/architecture.md, "Start-up
# time"): httpx imports its command-line client (click, rich, pygments) and Mako its Pygments
# syntax highlighting of template errors, ~0.4 s of every start together. A None entry makes
# their `try: import … except ImportError` take the fallback, as in a production install.
for _unused in ("httpx._main", "mako.ext.pygmentplugin"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]


def __getattr__(name: str) -> str:
    # `__version__` on first use: importlib.metadata (email, zipfile, csv) is a tenth of a second
    # that `herald --help` does without.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("herald")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
