"""`python -m moodbox`: the same as the `moodbox` command."""
import sys

from moodbox.commands.cli import main

sys.exit(main())
