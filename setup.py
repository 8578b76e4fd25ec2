"""Installs t2po_gym_autoregister.pth into site-packages (see _t2po_gym_hook.py).

Regular wheels carry it as data under the purelib path; editable installs
(``pip install -e .``) get it written into the editable wheel as well.
"""

import os
import sys
import sysconfig

from setuptools import setup
from setuptools.command.editable_wheel import editable_wheel

_PTH = "t2po_gym_autoregister.pth"
_site = os.path.relpath(sysconfig.get_paths()["purelib"], sys.prefix)


class _EditableWithPth(editable_wheel):
    """Adds the auto-registration .pth to the editable wheel (setuptools leaves data files out)."""

    def _select_strategy(self, *args, **kwargs):
        inner = super()._select_strategy(*args, **kwargs)
        text = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), _PTH)).read()

        class _Strategy:
            def __call__(self, wheel, files, mapping):
                inner(wheel, files, mapping)
                wheel.writestr(_PTH, text)

            def __enter__(self):
                inner.__enter__()
                return self

            def __exit__(self, *exc):
                return inner.__exit__(*exc)

        return _Strategy()


setup(data_files=[(_site, [_PTH])], cmdclass={"editable_wheel": _EditableWithPth})
