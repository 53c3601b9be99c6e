import sys

from dsv32_plugin.cli.main import main

sys.exit(main())
