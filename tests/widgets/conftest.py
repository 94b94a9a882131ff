"""The dock tests live in a folder per dock (mirroring src/napari_dcmix/widgets); their shared helpers
(``dcmix_dock_helpers``) sit here, importable from every sub-folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
