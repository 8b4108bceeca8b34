"""`python -m larq_dybnn_runtime MODEL --inputs x.npy`: run prepared samples."""

import sys

from larq_dybnn_runtime import main

sys.exit(main())
