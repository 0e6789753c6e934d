"""Atomic writes and the interrupt guard of dfem.fileio."""

import os
import signal
import sys

import pytest

from dfem.fileio import interrupts_deferred, write_json_atomic

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own Ctrl-C handler for each test, whatever a library set before (gmsh's
    initialize sets SIG_DFL and never restores it), and the previous handler after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def test_an_interrupt_inside_the_guard_is_raised_after_the_block(tmp_path):
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        write_json_atomic(tmp_path / "state.json", {"step": 3})
        done.append("block ran to its end")
    assert done == ["block ran to its end"]
    assert (tmp_path / "state.json").read_text().strip().endswith("}")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_an_interrupt_the_guard_changes_nothing():
    with interrupts_deferred():
        value = 1 + 1
    assert value == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_before_the_guard_is_not_held_back():
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        with interrupts_deferred():
            pytest.fail("the interrupt should have come before the block")
