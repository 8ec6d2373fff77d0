"""`python -m ldmscale` (and `torchrun -m ldmscale`) runs the CLI."""

import sys

from ldmscale.cli.main import main

sys.exit(main())
