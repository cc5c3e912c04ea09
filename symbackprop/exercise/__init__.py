"""Exercises: worksheets, answer keys and the interactive page, from one network and seed."""
