"""``python -m nsde_lib train ...`` / ``python -m nsde_lib eval ...``: see :mod:`nsde_lib.cli`."""
from .cli import main

raise SystemExit(main())
