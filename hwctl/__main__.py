"""``python -m hwctl``: the same as the ``hwctl`` command."""

from hwctl.cli import main

raise SystemExit(main())
