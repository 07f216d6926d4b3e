"""Crypto behind named functions with documented byte layouts, built on `cryptography`."""
