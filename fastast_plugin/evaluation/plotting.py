"""The one matplotlib set-up of the tools: a headless pyplot and figure saving.

Authors
 * fastast developers 2026
"""

__all__ = ["pyplot", "save_figure"]

_INSTALL_HINT = "plots need matplotlib: pip install matplotlib"


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed).

    Returns
    -------
    module
        ``matplotlib.pyplot``.

    Raises
    ------
    ImportError
        matplotlib is not installed (the message says how to install it).

    Example
    -------
    >>> plt = pyplot()
    >>> plt.get_backend().lower()
    'agg'
    """
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi=120):
    """Lay out, write and close a figure.

    Arguments
    ---------
    fig : matplotlib.figure.Figure
        The figure.
    path : str
        Image file to write (PNG).
    dpi : int
        Resolution.

    Example
    -------
    >>> fig, ax = pyplot().subplots()
    >>> path = getfixture("tmp_path") / "x.png"
    >>> save_figure(fig, path)
    >>> path.stat().st_size > 0
    True
    """
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
