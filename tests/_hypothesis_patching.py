"""Keep hypothesis failures readable under ``filterwarnings = error``; imported by the fuzz tests.

On a failure, hypothesis' pytest plugin imports ``hypothesis.extra._patching`` to suggest a patch; that
imports libcst (installed here as a dependency of other tools), whose import raises a DeprecationWarning
from mypy_extensions. Under ``-W error`` the warning turns the report into an INTERNALERROR that hides
the falsifying example. Importing the module once, with that warning ignored, avoids it. It is imported
by the modules that need it rather than by tests/conftest.py, so that other runs do not pay for it
(about 0.4 s).
"""

from __future__ import annotations

import contextlib
import warnings

with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401  # imported for its side effect only, see above
