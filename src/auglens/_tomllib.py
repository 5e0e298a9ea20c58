"""``tomllib`` on every supported Python: the standard library's from 3.11, the ``tomli`` backport on 3.10.

Both expose the same ``loads``/``load``/``TOMLDecodeError``; import it as
``from auglens._tomllib import tomllib``.
"""

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the Python 3.10 check in tests/project/test_python_minimum.py
    import tomli as tomllib

__all__ = ["tomllib"]
