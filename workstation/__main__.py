"""Entry point for ``python -m workstation``."""

from workstation.app.cli import main

raise SystemExit(main())
