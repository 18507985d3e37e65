"""Conformance: every real server x every case, fault injection, and fuzzing."""
