"""Command-line options of the test suite, as a plugin that pytest.ini's addopts load
(`-p tests.pytest_options`) before the command line is read: an option defined only in a
conftest is unknown at that point, so pytest would take the value of
`--pointhmr-reference DIR` for a test path and look for tests (and its rootdir) there.
`./holocap test` names pytest.ini with -c so that it is read whatever the arguments."""
from __future__ import annotations


def pytest_addoption(parser) -> None:
    parser.addoption("--pointhmr-reference", action="append", default=[], metavar="DIR",
                     help="also check the PointHMR back-end against this reference directory "
                          "(written by tools/make_pointhmr_reference.py); may be repeated")
