"""Hyphenated HTML attributes (``aria-*``, ``data-*``) for Dash components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def attrs(props: Mapping[str, str]) -> dict[str, Any]:
    """Hyphenated HTML attributes (``aria-*``, ``data-*``) to spread into a Dash component.

    Dash accepts them as wildcard props, which its generated signatures cannot name; spreading
    a ``dict[str, str]`` would be checked against every typed keyword, so the spread is typed
    ``Any`` here, once.
    """
    return dict(props)
