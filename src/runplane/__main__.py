"""`python -m runplane` is the `runplane` command."""

from runplane.cli.app import main

main()
