#!/usr/bin/env python
"""Convert an authors' released checkpoint into this package's layout
(the command line of :func:`visattn_mm.converters.cli.main`; ``--help`` says more).

    python tools/convert_official.py {bvit,dense,fcvit,pslt} SRC DST [--trust-checkpoint]
"""
import sys

from visattn_mm.converters.cli import main

if __name__ == '__main__':
    sys.exit(main())
