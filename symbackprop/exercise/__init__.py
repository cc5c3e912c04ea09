"""Exercises with answer keys (``symbackprop exercise``): takes a spec (some or none of its numbers
given) and a seed; returns the spec with its numbers, a worksheet that asks the quantities of one
training step, the hand-file skeleton ``check`` reads, the answer key (the filled hand file and
``explain``'s worked example) and a Moodle quiz — all from one draw, so they agree.

Modules: :mod:`~symbackprop.exercise.numbers` (the draw), :mod:`~symbackprop.exercise.step` (what
is asked, its answers), :mod:`~symbackprop.exercise.make` (one exercise and its texts),
:mod:`~symbackprop.exercise.sheet` (the documents' blocks), :mod:`~symbackprop.exercise.moodle`
(the quiz), :mod:`~symbackprop.exercise.tomlout` (TOML text); the interactive page that judges
each number as it is typed: :mod:`~symbackprop.exercise.page`, from :mod:`~symbackprop.exercise.judging`
(check's graph as data) and :mod:`~symbackprop.exercise.jsprint` (SymPy to JavaScript).
"""
