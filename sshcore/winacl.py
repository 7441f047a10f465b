"""Owner-only private key files on Windows, the way OpenSSH for Windows wants them.

OpenSSH for Windows refuses a private key ("UNPROTECTED PRIVATE KEY FILE") unless its
owner is the current user, SYSTEM or Administrators and its DACL allows nobody else.
A file created normally inherits the folder's ACL (often "Users: read"), and fixing it
afterwards leaves a window in which it is readable. So the file is created with its final
security descriptor in the same call (CreateFileW + SECURITY_ATTRIBUTES, CREATE_NEW).

Keys that exist already (copied from a share, unpacked from a zip) are judged the way
OpenSSH for Windows judges them (`sddl_problem`, from the file's security descriptor as SDDL
text) and fixed by giving them the same owner-only, protected DACL (`make_owner_only`).

The ACL is built and judged as plain data (`owner_only_acl`, `owner_only_sddl`, `parse_sddl`,
`sddl_problem`) so it is unit-tested on any OS; only `Win32Api` touches advapi32/kernel32,
through ctypes (no pywin32 needed).
"""

from __future__ import annotations

import ctypes
import re
import sys
from collections.abc import Iterable
from ctypes import wintypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SYSTEM_SID = "S-1-5-18"  # NT AUTHORITY\SYSTEM
ADMINISTRATORS_SID = "S-1-5-32-544"  # BUILTIN\Administrators
# NT SERVICE\TrustedInstaller: OpenSSH for Windows accepts it as owner and in the DACL too.
TRUSTED_INSTALLER_SID = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"

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
SE_FILE_OBJECT = 1  # SE_OBJECT_TYPE
OWNER_SECURITY_INFORMATION = 0x00000001
DACL_SECURITY_INFORMATION = 0x00000004
PROTECTED_DACL_SECURITY_INFORMATION = 0x80000000
ERROR_SUCCESS = 0

# Access rights (winnt.h) that the judgement names.
FILE_READ_DATA = 0x0001
FILE_WRITE_DATA = 0x0002
FILE_APPEND_DATA = 0x0004
FILE_WRITE_EA = 0x0010
FILE_WRITE_ATTRIBUTES = 0x0100
DELETE = 0x00010000
WRITE_DAC = 0x00040000
WRITE_OWNER = 0x00080000
GENERIC_ALL = 0x10000000
GENERIC_READ = 0x80000000
_WRITE_RIGHTS = (
    FILE_WRITE_DATA
    | FILE_APPEND_DATA
    | FILE_WRITE_EA
    | FILE_WRITE_ATTRIBUTES
    | DELETE
    | WRITE_DAC
    | WRITE_OWNER
    | GENERIC_WRITE
    | GENERIC_ALL
)
_READ_RIGHTS = FILE_READ_DATA | GENERIC_READ

_WINDOWS_ERRORS = {
    1: "not supported here (FAT and exFAT drives keep no ACLs)",
    2: "file not found",
    3: "path not found",
    5: "access denied",
    32: "the file is in use",
    50: "not supported here (FAT and exFAT drives keep no ACLs)",
    87: "invalid parameter",
    1307: "this account may not be the owner of the file",
    1336: "the ACL is not valid",
}


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


# ---------------------------------------------------------------------------------------------
# Judging an existing file's security descriptor (SDDL text), as OpenSSH for Windows does

# SDDL aliases of well-known SIDs: alias -> (SID, name for people).
SDDL_ALIASES: dict[str, tuple[str, str]] = {
    "SY": (SYSTEM_SID, "SYSTEM"),
    "BA": (ADMINISTRATORS_SID, "Administrators"),
    "BU": ("S-1-5-32-545", "Users"),
    "BG": ("S-1-5-32-546", "Guests"),
    "PU": ("S-1-5-32-547", "Power Users"),
    "AO": ("S-1-5-32-548", "Account Operators"),
    "SO": ("S-1-5-32-549", "Server Operators"),
    "PO": ("S-1-5-32-550", "Print Operators"),
    "BO": ("S-1-5-32-551", "Backup Operators"),
    "RE": ("S-1-5-32-552", "Replicator"),
    "RU": ("S-1-5-32-554", "Pre-Windows 2000 Compatible Access"),
    "RD": ("S-1-5-32-555", "Remote Desktop Users"),
    "NO": ("S-1-5-32-556", "Network Configuration Operators"),
    "MU": ("S-1-5-32-558", "Performance Monitor Users"),
    "LU": ("S-1-5-32-559", "Performance Log Users"),
    "IS": ("S-1-5-32-568", "IIS_IUSRS"),
    "CY": ("S-1-5-32-569", "Cryptographic Operators"),
    "ER": ("S-1-5-32-573", "Event Log Readers"),
    "CD": ("S-1-5-32-574", "Certificate Service DCOM Access"),
    "RA": ("S-1-5-32-575", "RDS Remote Access Servers"),
    "ES": ("S-1-5-32-576", "RDS Endpoint Servers"),
    "MS": ("S-1-5-32-577", "RDS Management Servers"),
    "HA": ("S-1-5-32-578", "Hyper-V Administrators"),
    "AA": ("S-1-5-32-579", "Access Control Assistance Operators"),
    "RM": ("S-1-5-32-580", "Remote Management Users"),
    "WD": ("S-1-1-0", "Everyone"),
    "AU": ("S-1-5-11", "Authenticated Users"),
    "IU": ("S-1-5-4", "Interactive users"),
    "NU": ("S-1-5-2", "Network logon users"),
    "AN": ("S-1-5-7", "Anonymous Logon"),
    "SU": ("S-1-5-6", "Service logon users"),
    "PS": ("S-1-5-10", "Principal Self"),
    "RC": ("S-1-5-12", "Restricted Code"),
    "WR": ("S-1-5-33", "Write Restricted Code"),
    "ED": ("S-1-5-9", "Enterprise Domain Controllers"),
    "LS": ("S-1-5-19", "Local Service"),
    "NS": ("S-1-5-20", "Network Service"),
    "CO": ("S-1-3-0", "Creator Owner"),
    "CG": ("S-1-3-1", "Creator Group"),
    "OW": ("S-1-3-4", "Owner Rights"),
    "AC": ("S-1-15-2-1", "All Application Packages"),
    "UD": ("S-1-5-84-0-0-0-0-0", "User-mode drivers"),
}
# Aliases whose SID depends on the machine or domain: only a name for people. "LA" is the
# built-in Administrator *account* (RID 500), which is often the user on a cloud server: the
# caller passes the user's own alias (`user_aliases`) so it is recognised.
SDDL_RELATIVE_ALIASES: dict[str, str] = {
    "LA": "the local Administrator account",
    "LG": "the local Guest account",
    "DA": "Domain Admins",
    "DU": "Domain Users",
    "DG": "Domain Guests",
    "DC": "Domain Computers",
    "DD": "Domain Controllers",
    "CA": "Cert Publishers",
    "SA": "Schema Admins",
    "EA": "Enterprise Admins",
    "PA": "Group Policy Creator Owners",
    "RS": "RAS and IAS Servers",
    "CN": "Cloneable Domain Controllers",
    "RO": "Enterprise Read-only Domain Controllers",
    "AP": "Protected Users",
    "KA": "Key Admins",
    "EK": "Enterprise Key Admins",
}
_SID_ALIAS = {sid: alias for alias, (sid, _) in SDDL_ALIASES.items()}

# Access rights as SDDL spells them (two letters each, concatenated).
SDDL_RIGHTS: dict[str, int] = {
    "GA": GENERIC_ALL,
    "GR": GENERIC_READ,
    "GW": GENERIC_WRITE,
    "GX": 0x20000000,
    "RC": 0x00020000,
    "SD": DELETE,
    "WD": WRITE_DAC,
    "WO": WRITE_OWNER,
    "RP": 0x0010,
    "WP": 0x0020,
    "CC": 0x0001,
    "DC": 0x0002,
    "LC": 0x0004,
    "SW": 0x0008,
    "LO": 0x0080,
    "DT": 0x0040,
    "CR": 0x0100,
    "FA": FILE_ALL_ACCESS,
    "FR": 0x00120089,
    "FW": 0x00120116,
    "FX": 0x001200A0,
    "KA": 0x000F003F,
    "KR": 0x00020019,
    "KW": 0x00020006,
    "KX": 0x00020019,
    "NR": 0x0001,
    "NW": 0x0002,
    "NX": 0x0004,
}
# ACE types that refuse access, or do not decide access at all (audit, alarm, label...).
# Every other type (A, OA, XA, ZA, and any unknown one) is taken as granting access: a
# judgement that errs towards "too open" is safe, one that errs the other way is not.
_DENY_TYPES = frozenset({"D", "OD", "XD"})
_NON_ACCESS_TYPES = frozenset({"AU", "AL", "OU", "OL", "ML", "XU", "SP", "RA", "TL", "FL"})

_SID_RE = re.compile(r"S-1-\d+(?:-\d+)*|[A-Z]{2}")
_DACL_FLAGS_RE = re.compile(r"(?:NO_ACCESS_CONTROL|AI|AR|P)*")


@dataclass(frozen=True)
class SddlAce:
    """One ACE of an SDDL string: its type ("A", "D", ...), flags, access mask and trustee."""

    ace_type: str
    flags: frozenset[str]
    rights: int
    sid: str  # "S-1-5-..." or a two-letter alias ("BU")

    @property
    def grants(self) -> bool:
        """True when this ACE allows access (allow-type, or an unknown type)."""
        return self.ace_type not in _DENY_TYPES and self.ace_type not in _NON_ACCESS_TYPES

    @property
    def inherited(self) -> bool:
        """True for an ACE that came from the parent folder ("ID")."""
        return "ID" in self.flags


@dataclass(frozen=True)
class SddlDescriptor:
    """The owner and DACL of an SDDL string; `dacl` is None for a NULL DACL (no protection)."""

    owner: str | None
    dacl: tuple[SddlAce, ...] | None
    dacl_flags: str = ""


def parse_sddl(sddl: str) -> SddlDescriptor:
    """Read the owner ("O:") and DACL ("D:") of an SDDL string; ValueError when malformed.

    A missing "D:" part, or "D:NO_ACCESS_CONTROL", is a NULL DACL: everyone has full access.
    """
    text = "".join(sddl.split())  # Windows writes none, but people paste SDDL with spaces
    owner: str | None = None
    dacl: tuple[SddlAce, ...] | None = None
    dacl_flags = ""
    pos = 0
    seen: set[str] = set()
    while pos < len(text):
        tag = text[pos : pos + 2]
        if tag not in ("O:", "G:", "D:", "S:") or tag in seen:
            raise ValueError(f"not SDDL: unexpected {text[pos : pos + 12]!r}")
        seen.add(tag)
        pos += 2
        if tag in ("O:", "G:"):
            match = _SID_RE.match(text, pos)
            if not match:
                raise ValueError(f"not SDDL: no SID after {tag!r}")
            if tag == "O:":
                owner = match.group()
            pos = match.end()
            continue
        flags_match = _DACL_FLAGS_RE.match(text, pos)
        flags = flags_match.group() if flags_match else ""
        pos += len(flags)
        aces: list[SddlAce] = []
        while pos < len(text) and text[pos] == "(":
            end = _closing_paren(text, pos)
            aces.append(_parse_ace(text[pos + 1 : end]))
            pos = end + 1
        if tag == "D:":
            dacl_flags = flags
            dacl = None if "NO_ACCESS_CONTROL" in flags else tuple(aces)
    return SddlDescriptor(owner, dacl, dacl_flags)


def _closing_paren(text: str, start: int) -> int:
    # Conditional ACEs carry expressions with parentheses and quoted strings inside.
    depth = 0
    quoted = False
    for i in range(start, len(text)):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("not SDDL: an ACE is not closed")


def _parse_ace(body: str) -> SddlAce:
    fields = body.split(";", 6)
    if len(fields) < 6:
        raise ValueError(f"not SDDL: bad ACE ({body[:40]!r})")
    ace_type, flags, rights, _object, _inherited_object, sid = fields[:6]
    if not _SID_RE.fullmatch(sid):
        raise ValueError(f"not SDDL: bad SID in ACE ({sid[:40]!r})")
    return SddlAce(ace_type.upper(), frozenset(_pairs(flags.upper())), parse_rights(rights), sid)


def _pairs(text: str) -> list[str]:
    if len(text) % 2:
        raise ValueError(f"not SDDL: {text!r}")
    return [text[i : i + 2] for i in range(0, len(text), 2)]


def parse_rights(text: str) -> int:
    """An SDDL access mask: "0x1200a9", a decimal number, or two-letter rights ("FRWD")."""
    if text[:2].lower() == "0x":
        return int(text[2:], 16)
    if text.isdigit():
        return int(text)
    mask = 0
    for pair in _pairs(text.upper()):
        if pair not in SDDL_RIGHTS:
            raise ValueError(f"not SDDL: unknown right {pair!r}")
        mask |= SDDL_RIGHTS[pair]
    return mask


def _canonical(sid: str) -> str:
    """One spelling per account: a fixed alias becomes its SID ("SY" -> "S-1-5-18")."""
    sid = sid.strip().upper()
    return SDDL_ALIASES[sid][0] if sid in SDDL_ALIASES else sid


def describe_sid(sid: str) -> str:
    """A SID or alias for people: "Users (BU)", "Everyone (WD)", "the account S-1-5-21-...\"."""
    key = sid.strip().upper()
    alias = key if key in SDDL_ALIASES or key in SDDL_RELATIVE_ALIASES else _SID_ALIAS.get(key)
    if alias in SDDL_ALIASES:
        return f"{SDDL_ALIASES[alias][1]} ({alias})"
    if alias in SDDL_RELATIVE_ALIASES:
        return f"{SDDL_RELATIVE_ALIASES[alias]} ({alias})"
    if key == TRUSTED_INSTALLER_SID:
        return "TrustedInstaller"
    if _SID_RE.fullmatch(key) and not key.startswith("S-"):
        return f"the account alias {key}"
    return f"the account {key}"


def _access_words(mask: int) -> str:
    if mask & GENERIC_ALL or mask & FILE_ALL_ACCESS == FILE_ALL_ACCESS:
        return "has full control of it"
    read, write = mask & _READ_RIGHTS, mask & _WRITE_RIGHTS
    if read and write:
        return "can read and change it"
    if write:
        return "can change it"
    if read:
        return "can read it"
    return "has access to it"


def _trusted(user_sid: str, user_aliases: Iterable[str]) -> set[str]:
    """Who OpenSSH lets own and open a private key: the user, SYSTEM, Administrators, TI."""
    accounts = (SYSTEM_SID, ADMINISTRATORS_SID, TRUSTED_INSTALLER_SID, user_sid, *user_aliases)
    return {_canonical(s) for s in accounts}


def sddl_problem(sddl: str, user_sid: str, *, user_aliases: Iterable[str] = ()) -> str | None:
    """Why OpenSSH for Windows would refuse a private key with this descriptor, or None.

    The rules of `check_secure_file_permission` (w32-sshfileperm.c) for private keys: the owner
    is the user, SYSTEM, Administrators or TrustedInstaller; no ACE allows anyone else
    anything (deny ACEs are fine); a NULL DACL is refused. `user_aliases` are other
    spellings of the user in SDDL ("LA" for the built-in Administrator account).
    The answer is short, for people: "Users (BU) can read it (inherited from its folder)".
    Raises ValueError for text that is not SDDL.
    """
    descriptor = parse_sddl(sddl)
    trusted = _trusted(user_sid, user_aliases)
    problems: list[str] = []
    if descriptor.owner is None:
        problems.append("it has no owner")
    elif _canonical(descriptor.owner) not in trusted:
        problems.append(f"owned by {describe_sid(descriptor.owner)}, not by you")
    if descriptor.dacl is None:
        problems.append("it has no ACL, so everyone has full control of it")
    else:
        for ace in descriptor.dacl:
            if not ace.grants or _canonical(ace.sid) in trusted:
                continue
            text = f"{describe_sid(ace.sid)} {_access_words(ace.rights)}"
            if ace.inherited:
                text += " (inherited from its folder)"
            if text not in problems:
                problems.append(text)
    return "; ".join(problems) or None


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

    def file_sddl(self, path: str) -> str: ...

    def descriptor_sddl(self, descriptor: int, information: int) -> str: ...

    def set_file_security(self, path: str, sddl: str, information: int) -> None: ...


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


def _user_aliases(api: WinApi, user_sid: str) -> tuple[str, ...]:
    """How Windows spells the user's SID in SDDL ("LA" for the built-in Administrator).

    Found by a round trip through Windows itself, so it matches what `file_sddl` returns.
    """
    _check_sid(user_sid)
    descriptor = api.security_descriptor(f"O:{user_sid}")
    try:
        text = api.descriptor_sddl(descriptor, OWNER_SECURITY_INFORMATION)
    finally:
        api.free(descriptor)
    owner = parse_sddl(text).owner
    return (owner,) if owner and _canonical(owner) != _canonical(user_sid) else ()


def sddl_writers(sddl: str, user_sid: str, *, user_aliases: Iterable[str] = ()) -> str | None:
    """Who besides the user, SYSTEM, Administrators and TrustedInstaller may change or
    replace a file with this descriptor ("Users (BU) can change it"), or None. For a file
    whose contents say which programs to run (the config): others may read it, not write it.
    Raises ValueError for text that is not SDDL."""
    descriptor = parse_sddl(sddl)
    trusted = _trusted(user_sid, user_aliases)
    problems: list[str] = []
    if descriptor.owner is not None and _canonical(descriptor.owner) not in trusted:
        problems.append(f"owned by {describe_sid(descriptor.owner)}, not by you")
    if descriptor.dacl is None:
        problems.append("it has no ACL, so everyone can change it")
    else:
        for ace in descriptor.dacl:
            if ace.grants and ace.rights & _WRITE_RIGHTS and _canonical(ace.sid) not in trusted:
                text = f"{describe_sid(ace.sid)} {_access_words(ace.rights)}"
                if text not in problems:
                    problems.append(text)
    return "; ".join(problems) or None


def file_writers(path: Path, api: WinApi | None = None) -> str | None:
    """`sddl_writers` for the file at `path` (OSError when its ACL cannot be read)."""
    api = api or Win32Api.load()
    user = api.current_user_sid()
    return sddl_writers(api.file_sddl(str(path)), user, user_aliases=_user_aliases(api, user))


def file_acl_problem(path: Path, api: WinApi | None = None) -> str | None:
    """Why OpenSSH for Windows would refuse `path` as a private key ("Users (BU) can read
    it"), or None when its owner and ACL are fine. OSError when they cannot be read."""
    api = api or Win32Api.load()
    user = api.current_user_sid()
    sddl = api.file_sddl(str(path))
    return sddl_problem(sddl, user, user_aliases=_user_aliases(api, user))


def make_owner_only(path: Path, api: WinApi | None = None) -> None:
    """Give an existing file the owner-only descriptor `create_private_file` creates files with.

    The DACL is replaced and protected (the folder's inheritable ACEs no longer apply). The
    owner becomes the current user unless it already is one OpenSSH accepts (the user,
    SYSTEM, Administrators, TrustedInstaller): taking ownership needs a right that the owner
    of a file, who may always rewrite its DACL, does not necessarily have.
    Raises OSError when Windows refuses (not allowed, or a drive without ACLs).
    """
    api = api or Win32Api.load()
    user = api.current_user_sid()
    sddl = owner_only_sddl(user)
    information = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION
    try:
        owner = parse_sddl(api.file_sddl(str(path))).owner
        owner_ok = owner is not None and _canonical(owner) in _trusted(
            user, _user_aliases(api, user)
        )
    except (OSError, ValueError):
        owner_ok = False  # unknown: set it, as for a new file
    if not owner_ok:
        information |= OWNER_SECURITY_INFORMATION
    api.set_file_security(str(path), sddl, information)


def _describe_error(code: int) -> str:
    known = _WINDOWS_ERRORS.get(code)
    return f"Windows error {code}: {known}" if known else f"Windows error {code}"


def _error(what: str, code: int) -> OSError:
    error = OSError(f"{what} failed ({_describe_error(code)})")
    error.winerror = code  # type: ignore[attr-defined]
    return error


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
        # Reading and replacing the owner and DACL of an existing file. SE_OBJECT_TYPE is a C
        # enum (int); PSID, PACL and PSECURITY_DESCRIPTOR are pointers (LPVOID).
        advapi32.GetNamedSecurityInfoW.argtypes = [
            wintypes.LPCWSTR,
            ctypes.c_int,
            wintypes.DWORD,
            p(wintypes.LPVOID),
            p(wintypes.LPVOID),
            p(wintypes.LPVOID),
            p(wintypes.LPVOID),
            p(wintypes.LPVOID),
        ]
        advapi32.GetNamedSecurityInfoW.restype = wintypes.DWORD  # an error code, not a BOOL
        advapi32.ConvertSecurityDescriptorToStringSecurityDescriptorW.argtypes = [
            wintypes.LPVOID,
            wintypes.DWORD,
            wintypes.DWORD,
            p(wintypes.LPWSTR),
            p(wintypes.ULONG),
        ]
        advapi32.ConvertSecurityDescriptorToStringSecurityDescriptorW.restype = wintypes.BOOL
        advapi32.GetSecurityDescriptorOwner.argtypes = [
            wintypes.LPVOID,
            p(wintypes.LPVOID),
            p(wintypes.BOOL),
        ]
        advapi32.GetSecurityDescriptorOwner.restype = wintypes.BOOL
        advapi32.GetSecurityDescriptorDacl.argtypes = [
            wintypes.LPVOID,
            p(wintypes.BOOL),
            p(wintypes.LPVOID),
            p(wintypes.BOOL),
        ]
        advapi32.GetSecurityDescriptorDacl.restype = wintypes.BOOL
        advapi32.SetNamedSecurityInfoW.argtypes = [
            wintypes.LPWSTR,
            ctypes.c_int,
            wintypes.DWORD,
            wintypes.LPVOID,
            wintypes.LPVOID,
            wintypes.LPVOID,
            wintypes.LPVOID,
        ]
        advapi32.SetNamedSecurityInfoW.restype = wintypes.DWORD  # an error code, not a BOOL
        return cls(kernel32, advapi32, ctypes.get_last_error)

    def _fail(self, what: str) -> OSError:
        return _error(what, int(self.last_error()))

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

    def file_sddl(self, path: str) -> str:
        """The owner and DACL of a file as SDDL (GetNamedSecurityInfoW, then text)."""
        descriptor = wintypes.LPVOID()
        code = self.advapi32.GetNamedSecurityInfoW(
            path,
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            None,  # owner, group, DACL and SACL pointers: all read from the descriptor
            None,
            None,
            None,
            ctypes.byref(descriptor),
        )
        if code != ERROR_SUCCESS:
            raise _error(f"GetNamedSecurityInfoW({path})", int(code))
        if not descriptor.value:
            raise _error(f"GetNamedSecurityInfoW({path})", 0)
        try:
            return self.descriptor_sddl(
                descriptor.value, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION
            )
        finally:
            self.kernel32.LocalFree(descriptor.value)

    def descriptor_sddl(self, descriptor: int, information: int) -> str:
        """The parts `information` names of a security descriptor, as SDDL text."""
        text = wintypes.LPWSTR()
        ok = self.advapi32.ConvertSecurityDescriptorToStringSecurityDescriptorW(
            descriptor, SDDL_REVISION_1, information, ctypes.byref(text), None
        )
        if not ok or not text.value:
            raise self._fail("ConvertSecurityDescriptorToStringSecurityDescriptorW")
        try:
            return str(text.value)
        finally:
            self.kernel32.LocalFree(ctypes.cast(text, ctypes.c_void_p).value)

    def set_file_security(self, path: str, sddl: str, information: int) -> None:
        """Set the owner and/or DACL (as `information` says) of a file from SDDL text.

        SetNamedSecurityInfoW, which honours PROTECTED_DACL_SECURITY_INFORMATION (the
        folder's inheritable ACEs are then not merged in).
        """
        descriptor = self.security_descriptor(sddl)
        try:
            owner = wintypes.LPVOID()
            dacl = wintypes.LPVOID()
            if information & OWNER_SECURITY_INFORMATION:
                defaulted = wintypes.BOOL()
                if not self.advapi32.GetSecurityDescriptorOwner(
                    descriptor, ctypes.byref(owner), ctypes.byref(defaulted)
                ):
                    raise self._fail("GetSecurityDescriptorOwner")
                if not owner.value:
                    raise ValueError(f"no owner in {sddl!r}")
            if information & DACL_SECURITY_INFORMATION:
                present = wintypes.BOOL()
                defaulted = wintypes.BOOL()
                if not self.advapi32.GetSecurityDescriptorDacl(
                    descriptor, ctypes.byref(present), ctypes.byref(dacl), ctypes.byref(defaulted)
                ):
                    raise self._fail("GetSecurityDescriptorDacl")
                if not present.value or not dacl.value:
                    raise ValueError(f"no DACL in {sddl!r}")  # a NULL DACL would open it to all
            code = self.advapi32.SetNamedSecurityInfoW(
                path, SE_FILE_OBJECT, information, owner.value, None, dacl.value, None
            )
            if code != ERROR_SUCCESS:
                raise _error(f"SetNamedSecurityInfoW({path})", int(code))
        finally:
            self.free(descriptor)
