"""The Windows owner-only ACL, checked on any OS: the data it builds and the Win32 calls it makes."""

from __future__ import annotations

import ctypes
import inspect
import re
from collections.abc import Callable
from ctypes import wintypes
from pathlib import Path
from types import SimpleNamespace
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


# -- judging an existing key's security descriptor, as OpenSSH for Windows does ---------------

# What Windows writes for a file made in the user's profile: owner and group are the user,
# full control for SYSTEM, Administrators and the user, all inherited from C:\Users\me.
FRESH_IN_PROFILE = f"O:{USER}G:{USER}D:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;FA;;;{USER})"
OTHER = "S-1-5-21-1004336348-1177238915-682003330-1002"
LOCAL_ADMIN = "S-1-5-21-1004336348-1177238915-682003330-500"


@pytest.mark.parametrize(
    ("sddl", "problem"),
    [
        (FRESH_IN_PROFILE, None),
        # What devtui writes (and fix-permissions sets), read back with Windows' aliases.
        (f"O:{USER}G:{USER}D:P(A;;FA;;;{USER})(A;;FA;;;SY)(A;;FA;;;BA)", None),
        (winacl.owner_only_sddl(USER), None),
        # Copied from a share or unpacked in C:\Temp: Users get read & execute (0x1200a9).
        (
            f"O:{USER}G:{USER}D:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;FA;;;{USER})"
            "(A;ID;0x1200a9;;;BU)",
            "Users (BU) can read it (inherited from its folder)",
        ),
        (f"O:{USER}D:P(A;;FA;;;{USER})(A;;FR;;;WD)", "Everyone (WD) can read it"),
        (f"O:BAD:(A;;FA;;;{USER})(A;;FA;;;AU)", "Authenticated Users (AU) has full control of it"),
        (f"O:{USER}D:(A;;0x1301bf;;;AU)", "Authenticated Users (AU) can read and change it"),
        (f"O:{USER}D:(A;;FW;;;IU)", "Interactive users (IU) can change it"),
        (f"O:{USER}D:(A;;RC;;;WD)", "Everyone (WD) has access to it"),
        (f"O:{USER}D:(A;;GR;;;S-1-5-32-545)", "Users (BU) can read it"),  # SID, not alias
        (f"O:{USER}D:(A;;GA;;;{OTHER})", f"the account {OTHER} has full control of it"),
        # Deny entries take access away: never a reason to refuse.
        (f"O:{USER}D:P(D;;FA;;;WD)(A;;FA;;;{USER})(A;;FA;;;SY)", None),
        (f"O:{USER}D:(OD;;FA;;;WD)(A;;FA;;;{USER})", None),
        # Owned by someone else: too open, even when the DACL names only the user.
        (f"O:{OTHER}G:{OTHER}D:P(A;;FA;;;{USER})", f"owned by the account {OTHER}, not by you"),
        (f"O:BUD:P(A;;FA;;;{USER})", "owned by Users (BU), not by you"),
        # SYSTEM, Administrators and TrustedInstaller may own it.
        (f"O:SYD:P(A;;FA;;;{USER})", None),
        (f"O:BAD:P(A;;FA;;;{USER})", None),
        (f"O:S-1-5-32-544D:P(A;;FA;;;S-1-5-18)(A;;FA;;;{USER})", None),
        (f"O:{winacl.TRUSTED_INSTALLER_SID}D:(A;;FA;;;{winacl.TRUSTED_INSTALLER_SID})", None),
        # Object and callback allow entries, unknown types: counted as allowing.
        (f"O:{USER}D:(OA;;FR;;;WD)", "Everyone (WD) can read it"),
        (
            f"O:{USER}D:(XA;;FR;;;BU;(Member_of {{SID(BA)}}))(A;;FA;;;{USER})",
            "Users (BU) can read it",
        ),
        # Every alias but SY and BA (and the user's own) is someone else.
        (f"O:{USER}D:(A;OICIIO;GA;;;CO)", "Creator Owner (CO) has full control of it"),
        (f"O:{USER}D:(A;;FA;;;OW)", "Owner Rights (OW) has full control of it"),
        (f"O:{USER}D:(A;;FA;;;LA)", "the local Administrator account (LA) has full control of it"),
        (f"O:{USER}D:(A;;FA;;;ZZ)", "the account alias ZZ has full control of it"),
        # No DACL at all (FAT/exFAT, or a NULL DACL): OpenSSH refuses it.
        (f"O:{USER}D:NO_ACCESS_CONTROL", "it has no ACL, so everyone has full control of it"),
        (f"O:{USER}G:{USER}", "it has no ACL, so everyone has full control of it"),
        (f"G:{USER}D:P(A;;FA;;;{USER})", "it has no owner"),
        # An empty DACL lets nobody in; nobody else, so OpenSSH has no complaint.
        (f"O:{USER}D:P", None),
        (
            f"O:{OTHER}D:(A;ID;FR;;;BU)(A;ID;FR;;;BU)(A;;FA;;;WD)",
            f"owned by the account {OTHER}, not by you; Users (BU) can read it (inherited "
            "from its folder); Everyone (WD) has full control of it",
        ),
    ],
)
def test_sddl_judgement_follows_openssh_for_windows(sddl: str, problem: str | None) -> None:
    assert winacl.sddl_problem(sddl, USER) == problem


def test_sddl_judgement_knows_the_user_by_its_windows_alias() -> None:
    # Logged in as the built-in Administrator (RID 500; common on cloud servers), Windows
    # writes the user as "LA". The caller learns that spelling from Windows itself.
    sddl = "O:LAG:LAD:PAI(A;;FA;;;LA)(A;;FA;;;SY)(A;;FA;;;BA)"
    assert winacl.sddl_problem(sddl, LOCAL_ADMIN, user_aliases=["LA"]) is None
    assert winacl.sddl_problem(sddl, LOCAL_ADMIN) is not None
    # Whitespace (pasted SDDL) and the SID-or-alias spelling do not matter.
    assert winacl.sddl_problem(f"O:SY D: (A;ID;FA;;;{USER})\n(A;;FA;;;S-1-5-18)", USER) is None


def test_sddl_parsing_reads_flags_rights_and_conditional_aces() -> None:
    parsed = winacl.parse_sddl(
        f"O:{USER}G:SYD:PAI(A;OICIID;0x1200a9;;;BU)(D;;FRFW;;;WD)"
        '(XA;;FX;;;AU;(@User.Project Any_of {"a(b", "c"}))(A;;1179817;;;SY)S:(AU;SAFA;FA;;;WD)'
    )
    assert parsed.owner == USER and parsed.dacl_flags == "PAI"
    assert parsed.dacl == (
        winacl.SddlAce("A", frozenset({"OI", "CI", "ID"}), 0x1200A9, "BU"),
        winacl.SddlAce("D", frozenset(), 0x00120089 | 0x00120116, "WD"),
        winacl.SddlAce("XA", frozenset(), 0x001200A0, "AU"),
        winacl.SddlAce("A", frozenset(), 0x1200A9, "SY"),
    )
    assert parsed.dacl[0].inherited and parsed.dacl[0].grants
    assert not parsed.dacl[1].grants and not parsed.dacl[1].inherited
    assert winacl.parse_rights("FA") == winacl.FILE_ALL_ACCESS
    assert winacl.parse_rights("0xF01FF") == winacl.parse_rights("CCDCLCSWRPWPDTLOCRSDRCWDWO")


@pytest.mark.parametrize(
    "bad",
    [
        "",  # nothing: no owner, no DACL
        "X:BA",
        "O:",
        "O:BAO:SY",
        "O:BAD:(A;;FA;;;BU",
        "O:BAD:(A;;FA;;BU)",
        "O:BAD:(A;;QQ;;;BU)",
        "O:BAD:(A;;FA;;;B)",
        "O:BAD:(A;;FA;;;BU)junk",
    ],
)
def test_malformed_sddl_is_a_value_error_never_a_verdict(bad: str) -> None:
    if bad == "":
        # Empty text has no owner and no DACL: refused, which is the safe answer.
        assert winacl.sddl_problem(bad, USER) == (
            "it has no owner; it has no ACL, so everyone has full control of it"
        )
        return
    with pytest.raises(ValueError):
        winacl.sddl_problem(bad, USER)


# -- reading and fixing through the WinApi protocol (a fake at the protocol level) -----------

SD = 0x5D00
WELL_KNOWN_SPELLING = {"S-1-5-18": "SY", "S-1-5-32-544": "BA"}


class ProtocolApi:
    """A `WinApi` double: one SDDL per path, spelled as Windows spells it; calls are logged."""

    def __init__(self, files: dict[str, str], user: str = USER, alias: str | None = None) -> None:
        self.files = files
        self.user = user
        self.alias = alias
        self.calls: list[tuple[Any, ...]] = []
        self.built: dict[int, str] = {}
        self.fail_set: OSError | None = None

    def spelled(self, sddl: str) -> str:
        names = dict(WELL_KNOWN_SPELLING)
        if self.alias:
            names[self.user] = self.alias
        return re.sub(r"S-1-[0-9-]+", lambda m: names.get(m.group(), m.group()), sddl)

    def current_user_sid(self) -> str:
        self.calls.append(("current_user_sid",))
        return self.user

    def security_descriptor(self, sddl: str) -> int:
        self.calls.append(("security_descriptor", sddl))
        self.built[SD] = sddl
        return SD

    def descriptor_sddl(self, descriptor: int, information: int) -> str:
        self.calls.append(("descriptor_sddl", descriptor, information))
        return self.spelled(self.built[descriptor])

    def free(self, pointer: int) -> None:
        self.calls.append(("free", pointer))

    def file_sddl(self, path: str) -> str:
        self.calls.append(("file_sddl", path))
        if path not in self.files:
            raise OSError(f"GetNamedSecurityInfoW({path}) failed (Windows error 5: access denied)")
        return self.files[path]

    def set_file_security(self, path: str, sddl: str, information: int) -> None:
        self.calls.append(("set_file_security", path, sddl, information))
        if self.fail_set:
            raise self.fail_set
        new = self.spelled(sddl)
        if not information & winacl.OWNER_SECURITY_INFORMATION:
            old_owner = winacl.parse_sddl(self.files[path]).owner
            new = f"O:{old_owner}" + new[new.index("D:") :]
        self.files[path] = new

    def create_new(self, path: str, security_descriptor: int) -> int:
        raise AssertionError("not used")

    def write(self, handle: int, data: bytes) -> None:
        raise AssertionError("not used")

    def close(self, handle: int) -> None:
        raise AssertionError("not used")


def test_protocol_double_has_every_protocol_method() -> None:
    wanted = {n for n in dir(winacl.WinApi) if not n.startswith("_")}
    assert wanted <= {n for n in dir(ProtocolApi) if not n.startswith("_")}
    assert wanted <= {n for n in dir(Win32Api) if not n.startswith("_")}


def test_reading_a_files_acl_asks_windows_how_it_spells_the_user() -> None:
    path = "C:\\Users\\me\\.ssh\\id_ed25519"
    api = ProtocolApi({path: FRESH_IN_PROFILE + "(A;ID;0x1200a9;;;BU)"})
    assert winacl.file_acl_problem(Path(path), api) == (
        "Users (BU) can read it (inherited from its folder)"
    )
    assert api.calls == [
        ("current_user_sid",),
        ("file_sddl", str(Path(path))),
        ("security_descriptor", f"O:{USER}"),
        ("descriptor_sddl", SD, winacl.OWNER_SECURITY_INFORMATION),
        ("free", SD),
    ]


def test_reading_the_acl_of_the_builtin_administrator() -> None:
    api = ProtocolApi({"k": "O:LAG:LAD:PAI(A;;FA;;;LA)(A;;FA;;;SY)(A;;FA;;;BA)"}, LOCAL_ADMIN, "LA")
    assert winacl.file_acl_problem(Path("k"), api) is None
    api.files["k"] += "(A;;FR;;;BU)"
    assert winacl.file_acl_problem(Path("k"), api) == "Users (BU) can read it"


def test_fixer_replaces_the_dacl_and_keeps_an_acceptable_owner() -> None:
    api = ProtocolApi({"k": FRESH_IN_PROFILE + "(A;ID;0x1200a9;;;BU)"})
    winacl.make_owner_only(Path("k"), api)
    assert api.calls == [
        ("current_user_sid",),
        ("file_sddl", "k"),
        ("security_descriptor", f"O:{USER}"),
        ("descriptor_sddl", SD, winacl.OWNER_SECURITY_INFORMATION),
        ("free", SD),
        (
            "set_file_security",
            "k",
            f"O:{USER}D:P(A;;FA;;;{USER})(A;;FA;;;S-1-5-18)(A;;FA;;;S-1-5-32-544)",
            0x80000004,  # DACL | PROTECTED_DACL: the folder's ACEs are no longer inherited
        ),
    ]
    assert api.files["k"] == f"O:{USER}D:P(A;;FA;;;{USER})(A;;FA;;;SY)(A;;FA;;;BA)"
    assert winacl.file_acl_problem(Path("k"), api) is None


@pytest.mark.parametrize(
    "files",
    [
        {"k": f"O:{OTHER}D:(A;;FA;;;{USER})(A;;FA;;;{OTHER})"},  # someone else owns it
        {"k": f"O:BUD:(A;;FA;;;{USER})"},
        {},  # the descriptor cannot be read: set everything, as for a new file
    ],
)
def test_fixer_takes_ownership_when_the_owner_is_not_acceptable(files: dict[str, str]) -> None:
    api = ProtocolApi(dict(files))
    winacl.make_owner_only(Path("k"), api)
    assert api.calls[-1] == (
        "set_file_security",
        "k",
        winacl.owner_only_sddl(USER),
        0x80000005,  # OWNER | DACL | PROTECTED_DACL
    )
    assert winacl.file_acl_problem(Path("k"), api) is None


def test_fixer_passes_windows_refusals_on() -> None:
    api = ProtocolApi({"k": f"O:{USER}D:(A;;FR;;;WD)"})
    api.fail_set = OSError("SetNamedSecurityInfoW(k) failed (Windows error 5: access denied)")
    with pytest.raises(OSError, match="access denied"):
        winacl.make_owner_only(Path("k"), api)


# -- the real Win32 bindings, against strict fake DLLs: every call is checked against its
#    declared argtypes (so a wrong pointer type or a missing declaration fails here, on Linux)


class StrictFunction:
    def __init__(self, dll: str, name: str, impl: Callable[..., Any] | None) -> None:
        self.dll = dll
        self.name = name
        self.impl = impl
        self.argtypes: Any = None
        self.restype: Any = None

    def __call__(self, *args: Any) -> Any:
        where = f"{self.dll}.{self.name}"
        assert self.argtypes is not None and self.restype is not None, f"{where} undeclared"
        assert len(args) == len(self.argtypes), f"{where}: {len(args)} arguments"
        for argtype, arg in zip(self.argtypes, args, strict=True):
            argtype.from_param(arg)  # TypeError unless ctypes would accept it
        assert self.impl is not None, f"{where} has no fake"
        return self.impl(*args)


class StrictDll:
    def __init__(self, name: str, impls: dict[str, Callable[..., Any]]) -> None:
        self.name = name
        self.impls = impls
        self.functions: dict[str, StrictFunction] = {}

    def __getattr__(self, name: str) -> StrictFunction:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self.functions:
            self.functions[name] = StrictFunction(self.name, name, self.impls.get(name))
        return self.functions[name]


def load_strict(
    monkeypatch: pytest.MonkeyPatch,
    kernel32: dict[str, Callable[..., Any]],
    advapi32: dict[str, Callable[..., Any]],
    last_error: int = 0,
) -> tuple[Win32Api, dict[str, StrictDll]]:
    """`Win32Api.load()` itself, with its declarations landing on strict doubles."""
    dlls: dict[str, StrictDll] = {}
    impls = {"kernel32": kernel32, "advapi32": advapi32}

    def win_dll(name: str, use_last_error: bool = False) -> StrictDll:
        assert use_last_error  # GetLastError is read through ctypes.get_last_error
        dlls[name] = StrictDll(name, impls[name])
        return dlls[name]

    monkeypatch.setattr(winacl, "sys", SimpleNamespace(platform="win32"))
    monkeypatch.setattr(ctypes, "WinDLL", win_dll, raising=False)
    monkeypatch.setattr(ctypes, "get_last_error", lambda: last_error, raising=False)
    return Win32Api.load(), dlls


def test_every_function_the_bindings_call_is_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    _, dlls = load_strict(monkeypatch, {}, {})
    declared = {
        (dll.name, name)
        for dll in dlls.values()
        for name, fn in dll.functions.items()
        if fn.argtypes is not None and fn.restype is not None
    }
    called = set(re.findall(r"self\.(kernel32|advapi32)\.(\w+)\(", inspect.getsource(Win32Api)))
    assert ("advapi32", "GetNamedSecurityInfoW") in called
    assert ("advapi32", "SetNamedSecurityInfoW") in called
    assert called <= declared
    # Error-code functions return DWORD; pointers are pointer-sized, never int.
    advapi = dlls["advapi32"].functions
    assert advapi["GetNamedSecurityInfoW"].restype is wintypes.DWORD
    assert advapi["SetNamedSecurityInfoW"].restype is wintypes.DWORD
    assert advapi["SetNamedSecurityInfoW"].argtypes[3:] == [wintypes.LPVOID] * 4
    assert dlls["kernel32"].functions["LocalFree"].argtypes == [wintypes.HLOCAL]


FILE_SDDL = FRESH_IN_PROFILE + "(A;ID;0x1200a9;;;BU)"
OWNER_PTR = 0x0A00
DACL_PTR = 0x0B00


class Log:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def add(self, *call: Any) -> None:
        self.calls.append(call)


def test_file_sddl_reads_owner_and_dacl_then_frees(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()

    def get_named(path: str, kind: int, info: int, o: Any, g: Any, d: Any, s: Any, sd: Any) -> int:
        log.add("GetNamedSecurityInfoW", path, kind, info, o, g, d, s)
        sd._obj.value = SD
        return 0

    def to_string(descriptor: int, revision: int, info: int, out: Any, size: Any) -> int:
        log.add("ConvertSecurityDescriptorToStringSecurityDescriptorW", descriptor, revision, info)
        out._obj.value = FILE_SDDL
        return 1

    api, _ = load_strict(
        monkeypatch,
        {"LocalFree": lambda p: log.add("LocalFree", "string" if p != SD else SD)},
        {
            "GetNamedSecurityInfoW": get_named,
            "ConvertSecurityDescriptorToStringSecurityDescriptorW": to_string,
        },
    )
    assert api.file_sddl("C:\\k") == FILE_SDDL
    assert log.calls == [
        ("GetNamedSecurityInfoW", "C:\\k", 1, 0x5, None, None, None, None),  # SE_FILE_OBJECT
        ("ConvertSecurityDescriptorToStringSecurityDescriptorW", SD, 1, 0x5),
        ("LocalFree", "string"),
        ("LocalFree", SD),
    ]


def test_file_sddl_failure_is_an_oserror_with_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    freed: list[Any] = []
    api, _ = load_strict(
        monkeypatch,
        {"LocalFree": freed.append},
        {"GetNamedSecurityInfoW": lambda *args: 5},  # returns the error, not FALSE
    )
    with pytest.raises(OSError, match=r"Windows error 5: access denied") as caught:
        api.file_sddl("C:\\k")
    assert getattr(caught.value, "winerror", None) == 5
    assert freed == []


@pytest.mark.parametrize(
    ("information", "owner_call"),
    [(0x80000005, True), (0x80000004, False)],
)
def test_set_file_security_makes_exactly_these_calls(
    monkeypatch: pytest.MonkeyPatch, information: int, owner_call: bool
) -> None:
    log = Log()
    sddl = winacl.owner_only_sddl(USER)

    def from_string(text: str, revision: int, out: Any, size: Any) -> int:
        log.add("ConvertStringSecurityDescriptorToSecurityDescriptorW", text, revision, size)
        out._obj.value = SD
        return 1

    def owner_of(descriptor: int, owner: Any, defaulted: Any) -> int:
        log.add("GetSecurityDescriptorOwner", descriptor)
        owner._obj.value = OWNER_PTR
        return 1

    def dacl_of(descriptor: int, present: Any, dacl: Any, defaulted: Any) -> int:
        log.add("GetSecurityDescriptorDacl", descriptor)
        present._obj.value = 1
        dacl._obj.value = DACL_PTR
        return 1

    def set_named(path: str, kind: int, info: int, o: Any, g: Any, d: Any, s: Any) -> int:
        log.add("SetNamedSecurityInfoW", path, kind, info, o, g, d, s)
        return 0

    api, _ = load_strict(
        monkeypatch,
        {"LocalFree": lambda p: log.add("LocalFree", p)},
        {
            "ConvertStringSecurityDescriptorToSecurityDescriptorW": from_string,
            "GetSecurityDescriptorOwner": owner_of,
            "GetSecurityDescriptorDacl": dacl_of,
            "SetNamedSecurityInfoW": set_named,
        },
    )
    api.set_file_security("C:\\k", sddl, information)
    expected: list[tuple[Any, ...]] = [
        ("ConvertStringSecurityDescriptorToSecurityDescriptorW", sddl, 1, None)
    ]
    if owner_call:
        expected.append(("GetSecurityDescriptorOwner", SD))
    expected += [
        ("GetSecurityDescriptorDacl", SD),
        (
            "SetNamedSecurityInfoW",
            "C:\\k",
            1,  # SE_FILE_OBJECT
            information,
            OWNER_PTR if owner_call else None,
            None,  # the group stays
            DACL_PTR,
            None,  # the SACL stays
        ),
        ("LocalFree", SD),  # the owner and DACL pointed into it: freed only after the call
    ]
    assert log.calls == expected


def test_set_file_security_failure_still_frees(monkeypatch: pytest.MonkeyPatch) -> None:
    freed: list[Any] = []

    def from_string(text: str, revision: int, out: Any, size: Any) -> int:
        out._obj.value = SD
        return 1

    def dacl_of(descriptor: int, present: Any, dacl: Any, defaulted: Any) -> int:
        present._obj.value = 1
        dacl._obj.value = DACL_PTR
        return 1

    api, _ = load_strict(
        monkeypatch,
        {"LocalFree": freed.append},
        {
            "ConvertStringSecurityDescriptorToSecurityDescriptorW": from_string,
            "GetSecurityDescriptorDacl": dacl_of,
            "SetNamedSecurityInfoW": lambda *args: 1307,
        },
    )
    with pytest.raises(OSError, match="may not be the owner"):
        api.set_file_security("C:\\k", winacl.owner_only_sddl(USER), 0x80000004)
    assert freed == [SD]


def test_descriptor_sddl_refuses_an_empty_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    api, _ = load_strict(
        monkeypatch,
        {"LocalFree": lambda p: None},
        {"ConvertSecurityDescriptorToStringSecurityDescriptorW": lambda *args: 0},
        last_error=1336,
    )
    with pytest.raises(OSError, match="1336: the ACL is not valid"):
        api.descriptor_sddl(SD, winacl.OWNER_SECURITY_INFORMATION)
