"""`python -m dialer` is the `dialer` command."""

from dialer.cli.main import main

raise SystemExit(main())
