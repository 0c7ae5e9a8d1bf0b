"""`python -m engine`: the same as the `liqpolicy` command."""

from engine.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
