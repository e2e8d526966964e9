"""``python -m cli``: the ``gridhall`` command (the demo starts its children this way)."""

from cli import main

main()
