"""Run a command as on a host without IPv6: `python no_ipv6.py COMMAND...` installs a seccomp
filter under which socket(AF_INET6, …) fails with EAFNOSUPPORT, exactly as it does when the kernel
booted with ipv6.disable=1, then execs COMMAND (the filter is kept across exec). Every other
system call, and every other address family, is untouched.

`command(argv)` builds that argv; `unavailable()` says why it cannot work here (None when it can):
the filter is written for x86_64 and aarch64 Linux. Only the standard library is imported, since
this file runs as a script in a fresh interpreter.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
import struct
import sys
from collections.abc import Sequence

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS: load a 32-bit word of struct seccomp_data
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_RET_K = 0x06
# struct seccomp_data: int nr at 0, __u32 arch at 4, __u64 args[6] from 16 (little-endian: low word first)
NR, ARCH, ARG0 = 0, 4, 16
ARCHES = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}  # (AUDIT_ARCH_…, __NR_socket)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def unavailable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "seccomp needs Linux"
    if platform.machine() not in ARCHES:
        return f"the no-IPv6 seccomp filter knows x86_64 and aarch64, not {platform.machine()}"
    return None


def command(argv: Sequence[str]) -> list[str]:
    """`argv`, run with IPv6 sockets refused."""
    return [sys.executable, os.path.abspath(__file__), *argv]


def _program() -> bytes:
    arch, socket_nr = ARCHES[platform.machine()]
    allow, refuse = SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT
    insns = [
        (BPF_LD_W_ABS, 0, 0, ARCH),
        (BPF_JEQ_K, 0, 5, arch),  # another ABI: allow
        (BPF_LD_W_ABS, 0, 0, NR),
        (BPF_JEQ_K, 0, 3, socket_nr),  # not socket(): allow
        (BPF_LD_W_ABS, 0, 0, ARG0),
        (BPF_JEQ_K, 0, 1, socket.AF_INET6),  # another family: allow
        (BPF_RET_K, 0, 0, refuse),
        (BPF_RET_K, 0, 0, allow),
    ]
    return b"".join(struct.pack("HBBI", *insn) for insn in insns)


def refuse_ipv6() -> None:
    """From now on, in this process and what it execs, IPv6 sockets cannot be opened."""
    reason = unavailable()
    if reason is not None:
        raise OSError(reason)
    libc = ctypes.CDLL(None, use_errno=True)
    program = ctypes.create_string_buffer(_program())
    fprog = _SockFprog(len(program.raw) // 8, ctypes.addressof(program))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


if __name__ == "__main__":
    refuse_ipv6()
    os.execvp(sys.argv[1], sys.argv[1:])
