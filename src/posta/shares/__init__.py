"""Shared conversations: the Shared special folder (DESIGN §5, §9)."""
