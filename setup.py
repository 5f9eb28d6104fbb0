"""Build the Cython kernel ``sim._fastcrypto``.

It walks lxml's libxml2 nodes through lxml's public C API (the ``.pxd`` files and libxml2
headers ship inside the lxml wheel, ``lxml.get_include()``) and takes SHA-1/SHA-256 from
OpenSSL's libcrypto, the library Python's ``hashlib`` already links.
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

extension = Extension(
    "sim._fastcrypto",
    sources=["sim/_fastcrypto.pyx"],
    include_dirs=lxml.get_include(),
    libraries=["crypto"],
    extra_compile_args=["-O3", "-Wno-deprecated-declarations", "-Wno-unused-function"],
)

setup(
    ext_modules=cythonize(
        [extension],
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
        },
    ),
)
