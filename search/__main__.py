"""``python -m search``: the command-line entry point."""

from search.cli import main

if __name__ == "__main__":
    main()
