"""Installs t2po_gym_autoregister.pth next to the packages (see _t2po_gym_hook.py)."""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithPth(build_py):
    def run(self):
        super().run()
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "t2po_gym_autoregister.pth")
        dst = os.path.join(self.build_lib, "t2po_gym_autoregister.pth")
        shutil.copyfile(src, dst)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, "t2po_gym_autoregister.pth")]


setup(cmdclass={"build_py": BuildWithPth})
