"""Account recovery and verification: links by email to verify an address, reset a password and
change the address, plus the policy check that gates approving an OAuth client.

Nothing here creates a browser session: a person who used a link signs in afterwards, through
the same sign-in (and, later, second-factor) steps as everyone else.
"""

from app.auth.recovery.policy import approval_blocker

__all__ = ["approval_blocker"]
