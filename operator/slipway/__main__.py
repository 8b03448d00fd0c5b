"""`python -m slipway` is the `slipway` command."""

from slipway.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
