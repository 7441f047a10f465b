"""Owner-only private key files on Windows, the way OpenSSH for Windows wants them.

OpenSSH for Windows refuses a private key ("UNPROTECTED PRIVATE KEY FILE") unless its
owner is the current user, SYSTEM or Administrators and its DACL allows nobody else.
A file created normally inherits the folder's ACL (often "Users: read"), and fixing it
afterwards leaves a window in which it is readable. So the file is created with its final
security descriptor in the same call (CreateFileW + SECURITY_ATTRIBUTES, CREATE_NEW).

The ACL is built as plain data (`owner_only_acl`, `owner_only_sddl`) so it is unit-tested
on any OS; only `Win32Api` touches advapi32/kernel32, through ctypes (no pywin32 needed).
"""

from __future__ import annotations

import ctypes
import sys
from ctypes import wintypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SYSTEM_SID = "S-1-5-18"  # NT AUTHORITY\SYSTEM
ADMINISTRATORS_SID = "S-1-5-32-544"  # BUILTIN\Administrators

FILE_ALL_ACCESS = 0x001F01FF
GENERIC_WRITE = 0x40000000
CREATE_NEW = 1
FILE_ATTRIBUTE_NORMAL = 0x80
SDDL_REVISION_1 = 1
TOKEN_QUERY = 0x0008
TOKEN_USER_CLASS = 1  # TOKEN_INFORMATION_CLASS.TokenUser
ERROR_FILE_EXISTS = 80
ERROR_ALREADY_EXISTS = 183
INVALID_HANDLE_VALUE = -1


@dataclass(frozen=True)
class Ace:
    """One access-allowed entry: who (a SID string) gets which rights (an access mask)."""

    sid: str
    rights: int
    account: str  # a human name for messages and tests; Windows only reads the SID


def owner_only_acl(user_sid: str) -> tuple[Ace, ...]:
    """The DACL of a private key: full control for the user, SYSTEM and Administrators only."""
    aces = [
        Ace(user_sid, FILE_ALL_ACCESS, "current user"),
        Ace(SYSTEM_SID, FILE_ALL_ACCESS, "SYSTEM"),
        Ace(ADMINISTRATORS_SID, FILE_ALL_ACCESS, "Administrators"),
    ]
    # A service running as SYSTEM would otherwise get the same ACE twice.
    seen: set[str] = set()
    unique = []
    for ace in aces:
        if ace.sid not in seen:
            seen.add(ace.sid)
            unique.append(ace)
    return tuple(unique)


def owner_only_sddl(user_sid: str) -> str:
    """The security descriptor as SDDL: owner = user, protected DACL (no inheritance)."""
    _check_sid(user_sid)
    entries = "".join(
        f"(A;;{'FA' if ace.rights == FILE_ALL_ACCESS else hex(ace.rights)};;;{ace.sid})"
        for ace in owner_only_acl(user_sid)
    )
    # "P" = SE_DACL_PROTECTED: the folder's inheritable ACEs are not merged in.
    return f"O:{user_sid}D:P{entries}"


def _check_sid(sid: str) -> None:
    # The SID comes from the process token, but it is pasted into SDDL: keep it a SID.
    parts = sid.split("-")
    if len(parts) < 3 or parts[0] != "S" or not all(p.isdigit() for p in parts[1:]):
        raise ValueError(f"not a SID: {sid!r}")


class _SecurityAttributes(ctypes.Structure):
    _fields_ = [
        ("nLength", wintypes.DWORD),
        ("lpSecurityDescriptor", wintypes.LPVOID),
        ("bInheritHandle", wintypes.BOOL),
    ]


class WinApi(Protocol):
    """The few Win32 calls needed; `Win32Api` is the real one, tests supply a fake."""

    def current_user_sid(self) -> str: ...

    def security_descriptor(self, sddl: str) -> int: ...

    def free(self, pointer: int) -> None: ...

    def create_new(self, path: str, security_descriptor: int) -> int: ...

    def write(self, handle: int, data: bytes) -> None: ...

    def close(self, handle: int) -> None: ...


def create_private_file(path: Path, data: bytes, api: WinApi | None = None) -> None:
    """Create `path` (which must not exist) owner-only from the first instant, holding `data`.

    Raises FileExistsError when it exists, OSError on any other failure (the file is then
    removed again).
    """
    api = api or Win32Api.load()
    sddl = owner_only_sddl(api.current_user_sid())
    descriptor = api.security_descriptor(sddl)
    try:
        handle = api.create_new(str(path), descriptor)
    finally:
        api.free(descriptor)
    try:
        api.write(handle, data)
    except BaseException:
        api.close(handle)
        path.unlink(missing_ok=True)
        raise
    api.close(handle)


class Win32Api:
    """ctypes bindings to advapi32/kernel32; `load()` works on Windows only."""

    def __init__(self, kernel32: Any, advapi32: Any, last_error: Any) -> None:
        self.kernel32 = kernel32
        self.advapi32 = advapi32
        self.last_error = last_error

    @classmethod
    def load(cls) -> Win32Api:
        """Bind the real DLLs, declaring argument types so 64-bit handles are not truncated."""
        if sys.platform != "win32":
            raise OSError("Windows ACLs can only be set on Windows")
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
        p = ctypes.POINTER
        advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW.argtypes = [
            wintypes.LPCWSTR,
            wintypes.DWORD,
            p(wintypes.LPVOID),
            p(wintypes.ULONG),
        ]
        advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW.restype = wintypes.BOOL
        advapi32.OpenProcessToken.argtypes = [wintypes.HANDLE, wintypes.DWORD, p(wintypes.HANDLE)]
        advapi32.OpenProcessToken.restype = wintypes.BOOL
        advapi32.GetTokenInformation.argtypes = [
            wintypes.HANDLE,
            ctypes.c_int,
            wintypes.LPVOID,
            wintypes.DWORD,
            p(wintypes.DWORD),
        ]
        advapi32.GetTokenInformation.restype = wintypes.BOOL
        advapi32.ConvertSidToStringSidW.argtypes = [wintypes.LPVOID, p(wintypes.LPWSTR)]
        advapi32.ConvertSidToStringSidW.restype = wintypes.BOOL
        kernel32.GetCurrentProcess.argtypes = []
        kernel32.GetCurrentProcess.restype = wintypes.HANDLE
        kernel32.CreateFileW.argtypes = [
            wintypes.LPCWSTR,
            wintypes.DWORD,
            wintypes.DWORD,
            p(_SecurityAttributes),
            wintypes.DWORD,
            wintypes.DWORD,
            wintypes.HANDLE,
        ]
        kernel32.CreateFileW.restype = wintypes.HANDLE
        kernel32.WriteFile.argtypes = [
            wintypes.HANDLE,
            wintypes.LPCVOID,
            wintypes.DWORD,
            p(wintypes.DWORD),
            wintypes.LPVOID,
        ]
        kernel32.WriteFile.restype = wintypes.BOOL
        kernel32.FlushFileBuffers.argtypes = [wintypes.HANDLE]
        kernel32.FlushFileBuffers.restype = wintypes.BOOL
        kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
        kernel32.CloseHandle.restype = wintypes.BOOL
        kernel32.LocalFree.argtypes = [wintypes.HLOCAL]
        kernel32.LocalFree.restype = wintypes.HLOCAL
        return cls(kernel32, advapi32, ctypes.get_last_error)

    def _fail(self, what: str) -> OSError:
        code = int(self.last_error())
        error = OSError(f"{what} failed (Windows error {code})")
        error.winerror = code  # type: ignore[attr-defined]
        return error

    def current_user_sid(self) -> str:
        """The SID of the user this process runs as (from its token, not from %USERNAME%)."""
        token = wintypes.HANDLE()
        process = self.kernel32.GetCurrentProcess()
        if not self.advapi32.OpenProcessToken(process, TOKEN_QUERY, ctypes.byref(token)):
            raise self._fail("OpenProcessToken")
        try:
            size = wintypes.DWORD(0)
            self.advapi32.GetTokenInformation(token, TOKEN_USER_CLASS, None, 0, ctypes.byref(size))
            buffer = ctypes.create_string_buffer(max(size.value, 1))
            if not self.advapi32.GetTokenInformation(
                token, TOKEN_USER_CLASS, buffer, size, ctypes.byref(size)
            ):
                raise self._fail("GetTokenInformation")
            # TOKEN_USER starts with SID_AND_ATTRIBUTES, whose first field is the PSID.
            sid_pointer = ctypes.cast(buffer, ctypes.POINTER(wintypes.LPVOID)).contents
            text = wintypes.LPWSTR()
            if not self.advapi32.ConvertSidToStringSidW(sid_pointer, ctypes.byref(text)):
                raise self._fail("ConvertSidToStringSidW")
            try:
                return str(text.value)
            finally:
                self.kernel32.LocalFree(ctypes.cast(text, ctypes.c_void_p).value)
        finally:
            self.kernel32.CloseHandle(token)

    def security_descriptor(self, sddl: str) -> int:
        """A self-relative security descriptor built from SDDL; release it with `free`."""
        pointer = wintypes.LPVOID()
        ok = self.advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl, SDDL_REVISION_1, ctypes.byref(pointer), None
        )
        if not ok or not pointer.value:
            raise self._fail("ConvertStringSecurityDescriptorToSecurityDescriptorW")
        return int(pointer.value)

    def free(self, pointer: int) -> None:
        """LocalFree memory that Windows allocated for us."""
        self.kernel32.LocalFree(pointer)

    def create_new(self, path: str, security_descriptor: int) -> int:
        """CreateFileW(CREATE_NEW, no sharing) with the given descriptor; returns the handle."""
        attributes = _SecurityAttributes(
            ctypes.sizeof(_SecurityAttributes), security_descriptor, False
        )
        handle = self.kernel32.CreateFileW(
            path,
            GENERIC_WRITE,
            0,  # no sharing while the key is being written
            ctypes.byref(attributes),
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            None,
        )
        # HANDLE comes back as an unsigned pointer: INVALID_HANDLE_VALUE is then 2**64 - 1.
        if handle in (None, INVALID_HANDLE_VALUE, ctypes.c_void_p(-1).value):
            code = int(self.last_error())
            if code in (ERROR_FILE_EXISTS, ERROR_ALREADY_EXISTS):
                raise FileExistsError(f"{path} already exists")
            raise self._fail(f"CreateFileW({path})")
        return int(handle)

    def write(self, handle: int, data: bytes) -> None:
        """Write all of `data` and flush it to disk."""
        view = memoryview(data)
        while view:
            written = wintypes.DWORD(0)
            chunk = bytes(view[: 1 << 20])
            if not self.kernel32.WriteFile(
                handle, chunk, len(chunk), ctypes.byref(written), None
            ) or (written.value == 0):
                raise self._fail("WriteFile")
            view = view[written.value :]
        if not self.kernel32.FlushFileBuffers(handle):
            raise self._fail("FlushFileBuffers")

    def close(self, handle: int) -> None:
        """CloseHandle."""
        self.kernel32.CloseHandle(handle)
