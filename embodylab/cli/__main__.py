"""`python -m embodylab.cli ...`: the `embodylab` command."""

from embodylab.cli import main

main()
