"""ICMP echo machinery without numpy or asyncio.

- `sockets`: opening an ICMP socket (raw or datagram), the wire format of slamon's echo requests,
  and sendmmsg/recvmmsg through ctypes; what both ICMP engines share.
- `once`: the one-shot round of `slamon probe --once`, in plain Python.

The service's engine, the ICMP prober, is slamon/probers/icmp.py (numpy buffers from
probers/mmsg.py, an asyncio round). These modules live apart from slamon.probers, whose registry
loads the model, so that a process that pings its fleet once loads neither.
"""
