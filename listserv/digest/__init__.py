"""Digests: build them from posts (build, pure) and run them once per period (runs)."""
