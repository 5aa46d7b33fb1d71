"""``python -m segnas_lite COMMAND ...``: the ``segnas`` command (``torchrun -m`` needs a module)."""
import sys

from segnas_lite.cli import main

sys.exit(main())
