"""Lets pytest import `bot_actions` from any working directory (this folder goes on sys.path)."""
