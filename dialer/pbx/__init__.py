"""The PBX adapter: our one door to the Asterisk Manager Interface (over panoramisk).

`client.AmiClient` keeps a supervised AMI session; `adapter.AmiPbx` is the campaigns' `Pbx` on
it. Only this package imports panoramisk.
"""
