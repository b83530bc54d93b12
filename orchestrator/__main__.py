"""`python -m orchestrator ...`: the `emocal` command (orchestrator/cli.py) without the console script."""
import sys

from orchestrator.cli import main

sys.exit(main())
