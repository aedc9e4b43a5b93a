"""`python -m flashroom` runs the command-line interface."""

from flashroom.cli.main import main

if __name__ == "__main__":
    main()
