"""Outbound calls (core): campaign runners, their pacing, rules and recovery.

Depends only on its ports (`dialer.calling.ports`: the PBX, the campaign repository), the
config models and the shared modules; no I/O library. `dialer.pbx` and `dialer.store`
implement the ports; `dialer.app` wires them.
"""
