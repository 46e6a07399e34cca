"""The optional compiled accelerators (styx/protocol/_accel.c, styx/_cbus.c).

Everything else is in pyproject.toml. The extension is optional: with no
compiler, or if the build fails, setuptools warns and installs the pure
Python package, which gives the same results (styx/protocol/scan.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("styx.protocol._accel", ["styx/protocol/_accel.c"], depends=["styx/_slots.h"],
                             optional=True),
                   Extension("styx._cbus", ["styx/_cbus.c"], depends=["styx/_slots.h"], optional=True)])
