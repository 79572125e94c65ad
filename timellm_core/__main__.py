"""``python -m timellm_core ...``"""

import sys

from timellm_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
