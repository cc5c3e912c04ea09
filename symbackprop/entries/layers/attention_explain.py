"""explain's part for ``attention`` (symbackprop.entries.layers.attention): one head written out."""


class AttentionExplain:
    """The explain hooks of :class:`~symbackprop.entries.layers.attention.Attention` (mixed into it)."""
