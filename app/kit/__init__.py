"""Shared, feature-free pieces every feature builds on."""
