"""A password check that could not run is not a wrong password (review-22; fixed in
app/auth/passwords.py `_Argon2`: it is GateBusy, a 503 with Retry-After).

argon2 needs 64 MiB per hash; where that memory cannot be had (an address-space limit, strict
overcommit), argon2-cffi raises VerificationError("Memory allocation error"), and pwdlib's
Argon2Hasher.verify turns every VerificationError into False: the right password reads as a
wrong one, and sign-in counts a failure against the account and the address. Under
PASSWORD_HASH_PRIORITY=auto a rescued check runs a second argon2 beside the first (threads + 1
hashes in memory), and the caller takes whichever answers first: a rescue whose allocation fails
answers at once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

PROBE = """
import asyncio, resource
from app.auth import passwords

async def main():
    passwords.configure(1, "low")
    stored = await passwords.hash_password("correct horse battery staple")  # thread started
    # Room for the process as it is and half of one hash.
    used = int(open("/proc/self/statm").read().split()[0]) * 4096
    resource.setrlimit(resource.RLIMIT_AS, (used + 32 * 1024 * 1024, resource.RLIM_INFINITY))
    try:
        answer = await passwords.verify_password("correct horse battery staple", stored)
    except Exception as exc:
        print("RAISED", type(exc).__name__)
    else:
        print("ANSWER", answer)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS as Linux applies it")
def test_a_check_without_its_memory_is_an_error_not_a_wrong_password() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    out = probe.stdout.strip()
    assert out.startswith(("RAISED", "ANSWER")), out
    assert out != "ANSWER (False, None)", "the right password was reported as a wrong one"
    # Busy, not wrong: the sign-in route answers GateBusy with 503 and Retry-After.
    assert out == "RAISED GateBusy"
