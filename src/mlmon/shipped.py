"""Where the files shipped with mlmon are: dashboards, monitors, the catalogue, the example config, the Agent check.

A wheel carries them inside the package, at ``mlmon/_shipped/``, laid out as in the repository
(``pyproject.toml`` maps them there); an editable install reads the source checkout's own files.
"""

from __future__ import annotations

from pathlib import Path

#: paths below :func:`shipped_root`, the same in the wheel and in the repository
CATALOGUE = "metadata.csv"
EXAMPLE_CONFIG = "conf.d/mlmon.d/conf.yaml.example"
AGENT_CHECK = "checks.d/mlmon.py"
SHIPPED = ("dashboards", "monitors", CATALOGUE, EXAMPLE_CONFIG, AGENT_CHECK)

_PACKAGED = Path(__file__).resolve().parent / "_shipped"
_CHECKOUT = Path(__file__).resolve().parents[2]  # src/mlmon/shipped.py -> the repository


def shipped_root() -> Path:
    """The directory holding ``dashboards/``, ``monitors/``, ``metadata.csv``, ``conf.d/`` and ``checks.d/``.

    The copies installed with the package when there are any, else the source checkout that an editable
    install imports mlmon from. Raises :class:`FileNotFoundError` when neither is there.
    """
    for root in (_PACKAGED, _CHECKOUT):
        if (root / "monitors").is_dir() and (root / CATALOGUE).is_file():
            return root
    raise FileNotFoundError(f"mlmon's shipped assets are missing: neither {_PACKAGED} nor a source checkout at "
                            f"{_CHECKOUT} holds monitors/ and {CATALOGUE} (reinstall mlmon, or give --root)")
