"""Shipped chat templates (package data).

``path("deepseek_v32.jinja")`` gives a filesystem path usable as
``--chat-template``.
"""

from importlib import resources


def path(name: str) -> str:
    """Return the file path of the shipped template ``name``; KeyError-free: FileNotFoundError if absent."""
    ref = resources.files(__name__).joinpath(name)
    if not ref.is_file():
        available = sorted(p.name for p in resources.files(__name__).iterdir() if p.name.endswith(".jinja"))
        raise FileNotFoundError(f"no template {name!r}; shipped: {available}")
    return str(ref)
