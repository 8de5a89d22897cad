"""The grant types /token accepts: one module each."""
