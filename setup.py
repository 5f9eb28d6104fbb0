"""Build the Cython kernel: ``sim._fastcrypto`` and ``sim._fastshape``.

It walks lxml's libxml2 nodes through lxml's public C API (the ``.pxd`` files and libxml2
headers ship inside the lxml wheel, ``lxml.get_include()``) and takes SHA-1/SHA-256 from
OpenSSL's libcrypto, the library Python's ``hashlib`` already links.
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILE_ARGS = ["-O3", "-Wno-deprecated-declarations", "-Wno-unused-function"]
extensions = [
    Extension(
        "sim._fastcrypto",
        sources=["sim/_fastcrypto.pyx"],
        include_dirs=lxml.get_include(),
        libraries=["crypto"],
        extra_compile_args=COMPILE_ARGS,
    ),
    Extension(
        "sim._fastshape",
        sources=["sim/_fastshape.pyx"],
        include_dirs=lxml.get_include(),
        extra_compile_args=COMPILE_ARGS,
    ),
    Extension("sim._fastbase64", sources=["sim/_fastbase64.pyx"], extra_compile_args=COMPILE_ARGS),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
        },
    ),
)
