"""The Windows owner-only ACL, checked on any OS: the data it builds and the Win32 calls it makes."""

from __future__ import annotations

import ctypes
from ctypes import wintypes
from pathlib import Path
from typing import Any

import pytest

from sshcore import winacl
from sshcore.winacl import ADMINISTRATORS_SID, FILE_ALL_ACCESS, SYSTEM_SID, Ace, Win32Api

USER = "S-1-5-21-1004336348-1177238915-682003330-1001"


def test_acl_grants_full_control_to_user_system_and_administrators_only() -> None:
    assert winacl.owner_only_acl(USER) == (
        Ace(USER, 0x001F01FF, "current user"),
        Ace("S-1-5-18", 0x001F01FF, "SYSTEM"),
        Ace("S-1-5-32-544", 0x001F01FF, "Administrators"),
    )


def test_sddl_sets_owner_and_protects_the_dacl_from_inheritance() -> None:
    assert winacl.owner_only_sddl(USER) == (
        f"O:{USER}D:P(A;;FA;;;{USER})(A;;FA;;;S-1-5-18)(A;;FA;;;S-1-5-32-544)"
    )


def test_acl_has_no_duplicate_when_running_as_system() -> None:
    assert winacl.owner_only_acl(SYSTEM_SID) == (
        Ace(SYSTEM_SID, FILE_ALL_ACCESS, "current user"),
        Ace(ADMINISTRATORS_SID, FILE_ALL_ACCESS, "Administrators"),
    )
    assert winacl.owner_only_sddl(SYSTEM_SID) == (
        "O:S-1-5-18D:P(A;;FA;;;S-1-5-18)(A;;FA;;;S-1-5-32-544)"
    )


@pytest.mark.parametrize("bad", ["", "BA", "S-1-5-21-1)(A;;FA;;;WD", "S-1", "s-1-5-18"])
def test_sddl_refuses_anything_but_a_sid(bad: str) -> None:
    with pytest.raises(ValueError):
        winacl.owner_only_sddl(bad)


def test_loading_the_real_api_off_windows_is_a_clear_error() -> None:
    with pytest.raises(OSError, match="only be set on Windows"):
        Win32Api.load()


# -- the Win32 calls, against fake DLLs that record what they are given ----------------------


class FakeFunction:
    def __init__(self, impl: Any) -> None:
        self.impl = impl
        self.argtypes: Any = None
        self.restype: Any = None

    def __call__(self, *args: Any) -> Any:
        return self.impl(*args)


class FakeWindows:
    """kernel32 + advapi32 doubles; files are written to a dict, calls are logged."""

    SD = 0x5D00
    HANDLE = 0x44

    def __init__(self, exists: bool = False) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.files: dict[str, bytearray] = {}
        self.exists = exists
        self.error = 0
        self.sa: tuple[int, int, bool] | None = None
        self.freed: list[int] = []
        self.closed: list[int] = []

    def dll(self, **functions: Any) -> Any:
        class Dll:
            pass

        dll = Dll()
        for name, impl in functions.items():
            setattr(dll, name, FakeFunction(impl))
        return dll

    def api(self) -> Win32Api:
        kernel32 = self.dll(
            CreateFileW=self.create_file,
            WriteFile=self.write_file,
            FlushFileBuffers=lambda h: 1,
            CloseHandle=lambda h: self.closed.append(h) or 1,
            LocalFree=lambda p: self.freed.append(p),
            GetCurrentProcess=lambda: -1,
        )
        advapi32 = self.dll(
            ConvertStringSecurityDescriptorToSecurityDescriptorW=self.convert_sddl,
        )
        return Win32Api(kernel32, advapi32, lambda: self.error)

    def convert_sddl(self, sddl: str, revision: int, out: Any, size: Any) -> int:
        self.calls.append(
            ("ConvertStringSecurityDescriptorToSecurityDescriptorW", (sddl, revision))
        )
        out._obj.value = self.SD
        return 1

    def create_file(
        self,
        path: str,
        access: int,
        share: int,
        sa_ref: Any,
        disposition: int,
        flags: int,
        template: Any,
    ) -> int:
        sa = sa_ref._obj
        self.sa = (sa.nLength, sa.lpSecurityDescriptor, bool(sa.bInheritHandle))
        self.calls.append(("CreateFileW", (path, access, share, disposition, flags, template)))
        if self.exists:
            self.error = winacl.ERROR_FILE_EXISTS
            return ctypes.c_void_p(-1).value or 0
        self.files[path] = bytearray()
        self.path = path
        return self.HANDLE

    def write_file(self, handle: int, data: bytes, size: int, written: Any, overlapped: Any) -> int:
        assert handle == self.HANDLE and overlapped is None
        self.files[self.path] += data[:size]
        written._obj.value = size
        return 1


class FakeApi(Win32Api):
    def __init__(self, fake: FakeWindows) -> None:
        api = fake.api()
        super().__init__(api.kernel32, api.advapi32, api.last_error)

    def current_user_sid(self) -> str:
        return USER


def test_private_file_is_created_new_with_the_owner_only_descriptor(tmp_path: Path) -> None:
    fake = FakeWindows()
    target = tmp_path / "id_ed25519"
    winacl.create_private_file(target, b"KEY DATA", api=FakeApi(fake))
    assert fake.calls[0] == (
        "ConvertStringSecurityDescriptorToSecurityDescriptorW",
        (winacl.owner_only_sddl(USER), 1),
    )
    path, access, share, disposition, flags, template = fake.calls[1][1]
    assert path == str(target)
    assert access == 0x40000000  # GENERIC_WRITE
    assert share == 0  # nobody else may open it while the key is written
    assert disposition == 1  # CREATE_NEW: never an existing file, never its old ACL
    assert flags == 0x80 and template is None
    # The descriptor goes in with the create call itself, not applied afterwards.
    assert fake.sa == (ctypes.sizeof(winacl._SecurityAttributes), FakeWindows.SD, False)
    assert fake.files[str(target)] == b"KEY DATA"
    assert fake.freed == [FakeWindows.SD]
    assert fake.closed == [FakeWindows.HANDLE]


def test_existing_file_raises_file_exists(tmp_path: Path) -> None:
    fake = FakeWindows(exists=True)
    with pytest.raises(FileExistsError):
        winacl.create_private_file(tmp_path / "k", b"x", api=FakeApi(fake))
    assert fake.freed == [FakeWindows.SD]  # the descriptor is released on failure too


def test_real_api_declares_pointer_sized_handles() -> None:
    # Without restype HANDLE, ctypes would truncate 64-bit handles to int: check the bindings.
    assert ctypes.sizeof(wintypes.HANDLE) == ctypes.sizeof(ctypes.c_void_p)
    fields = dict(winacl._SecurityAttributes._fields_)
    assert fields["lpSecurityDescriptor"] is wintypes.LPVOID


def test_current_user_sid_reads_the_process_token() -> None:
    log: list[tuple[str, Any]] = []
    sid_address = 0xABC0

    def open_token(process: Any, access: int, token_ref: Any) -> int:
        log.append(("OpenProcessToken", access))
        token_ref._obj.value = 0x70
        return 1

    def token_information(token: Any, cls: int, buf: Any, size: Any, needed_ref: Any) -> int:
        log.append(("GetTokenInformation", cls))
        if buf is None:  # first call: ask for the size, as Windows wants
            needed_ref._obj.value = 16
            return 0
        ctypes.c_void_p.from_buffer(buf).value = sid_address  # TOKEN_USER.User.Sid
        return 1

    def sid_to_string(sid: Any, out_ref: Any) -> int:
        log.append(("ConvertSidToStringSidW", sid.value))
        out_ref._obj.value = USER
        return 1

    fake = FakeWindows()
    kernel32 = fake.dll(
        GetCurrentProcess=lambda: -1,
        CloseHandle=lambda h: log.append(("CloseHandle", h.value)) or 1,
        LocalFree=lambda p: log.append(("LocalFree", p is not None)),
    )
    advapi32 = fake.dll(
        OpenProcessToken=open_token,
        GetTokenInformation=token_information,
        ConvertSidToStringSidW=sid_to_string,
    )
    assert Win32Api(kernel32, advapi32, lambda: 0).current_user_sid() == USER
    assert log == [
        ("OpenProcessToken", winacl.TOKEN_QUERY),
        ("GetTokenInformation", winacl.TOKEN_USER_CLASS),
        ("GetTokenInformation", winacl.TOKEN_USER_CLASS),
        ("ConvertSidToStringSidW", sid_address),
        ("LocalFree", True),
        ("CloseHandle", 0x70),
    ]
