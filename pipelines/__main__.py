"""`python -m pipelines JOB [options]`: the `keras-vae` command, from a checkout."""

import sys

from .cli import main

sys.exit(main())
