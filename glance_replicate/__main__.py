import sys

from glance_replicate.cli import main

sys.exit(main())
