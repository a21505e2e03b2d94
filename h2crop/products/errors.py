"""The error every product reader raises for input it cannot use."""


class ProductError(ValueError):
    """A satellite product (or catalogue) that cannot be used as given.

    The message names the product or file, the key or element looked at and
    what was expected, so that a command-line tool can print it as one
    ``error: ...`` line.
    """
