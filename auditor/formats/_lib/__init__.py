"""Shared byte readers of the format modules: protobuf wire, bounded JSON, limits, streams.

Nothing here knows a format; every format room may use it.
"""
