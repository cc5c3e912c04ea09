"""Explain: the worked example — forward pass, loss, backward pass, optimizer update, new loss.

Takes a network with numbers and returns a document (blocks of :mod:`symbackprop.writers.document`)
written as Markdown, LaTeX or HTML. :mod:`.example` runs the steps; :mod:`.worksheet` holds the
numbers as a person writes them; :mod:`.worked` builds each part of the page from the layer entries'
hooks.
"""
from .._lazy import exports

__getattr__, __dir__ = exports(__name__, {"explain": "example", "Explanation": "example"})
