"""`python -m listserv` runs the command line."""

from listserv.cli import main

if __name__ == "__main__":
    main()
