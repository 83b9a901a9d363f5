import sys

from headstart.cli.main import main

sys.exit(main())
