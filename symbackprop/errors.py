"""The one error type bad input raises: it names the field and the problem."""


class SpecError(ValueError):
    """Bad input. ``str(err)`` is the one line the command line prints.

    >>> str(SpecError("network.loss", "unknown loss 'l2'"))
    "network.loss: unknown loss 'l2'"
    """

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")
