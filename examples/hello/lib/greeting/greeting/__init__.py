"""Friendly greetings (the library of the hello example, shipped in its virtualenv)."""

__version__ = "1.0.0"


def greet(name="world"):
    """Return the greeting for name."""
    name = " ".join(str(name).split()) or "world"
    return f"Hello, {name}!"
