import sys

from stream_am.scenarios.cli import main

sys.exit(main(sys.argv[1:]))
