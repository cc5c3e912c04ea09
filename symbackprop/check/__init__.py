"""Check: a person's hand calculation judged number by number.

Takes a network and a hand file (:mod:`.hand`) and returns a verdict per number — ``ok``,
``wrong`` (with the likely mistake) or ``carried`` (wrong only through the person's own earlier
numbers). :mod:`.graph` lays out what each number is computed from, :mod:`.intervals` holds the
interval arithmetic of written digits, :mod:`.evaluate` and :mod:`.step` recompute a number from
the person's own inputs, and :mod:`.catalogue` gathers the catalogued mistakes (:mod:`.mistakes`,
:mod:`.passmistakes`, :mod:`.stepmistakes`, and the layer entries' slips via :mod:`.slipbook`).
:mod:`.judge` runs it.
"""
from .._lazy import exports

__getattr__, __dir__ = exports(__name__, {"check": "judge", "Result": "judge", "conventions": "judge",
                                          "load_hand": "hand"})
