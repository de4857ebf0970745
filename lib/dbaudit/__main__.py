import sys

from dbaudit.cli import main

sys.exit(main())
