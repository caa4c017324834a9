import sys

from glance_upload.cli import main

sys.exit(main())
