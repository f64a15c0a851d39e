"""The MIB objects slamon reads from a switch, and why (docs/snmp.md lists them for operators).

Only standard MIBs, by number (no MIB files are needed at run time): every vendor's access switch
implements IF-MIB, and PoE switches implement POWER-ETHERNET-MIB (RFC 3621).

- `sysUpTime.0` (SNMPv2-MIB): a decrease between two polls is a reboot (or the 497-day wrap of its
  32-bit ticks, told apart by the time elapsed).
- IF-MIB, per port: `ifName` (the name a camera's `uplink` uses), `ifAdminStatus` and
  `ifOperStatus` (a port down or shut at the time of a camera's failure is that outage's
  evidence), `ifHCInOctets` / `ifHCOutOctets` (64-bit traffic counters: exported as counters, and
  a rate between polls) and `ifInErrors`.
- POWER-ETHERNET-MIB: `pethPsePortDetectionStatus` per port (a PoE fault cuts a camera's power
  while its port may stay up) and the main PSE's `pethMainPsePower` (the budget, W) and
  `pethMainPseConsumptionPower` (W in use). The port table is indexed (group, port); the port
  number is taken as the `ifIndex`, as the access switches we know number them (a vendor whose
  numbering differs needs a map, docs/snmp.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from slamon.probers.snmp_wire import encode_oid, parse_oid


@dataclass(frozen=True, slots=True)
class Column:
    """A table column walked per switch: `key` names it in results."""

    key: str
    oid: str

    @property
    def prefix(self) -> bytes:
        return encode_oid(parse_oid(self.oid))


SYS_UPTIME = encode_oid(parse_oid("1.3.6.1.2.1.1.3.0"))
PSE_POWER = encode_oid(parse_oid("1.3.6.1.2.1.105.1.3.1.1.2.1"))  # pethMainPsePower.1, W
PSE_CONSUMPTION = encode_oid(parse_oid("1.3.6.1.2.1.105.1.3.1.1.4.1"))  # pethMainPseConsumptionPower.1, W
SCALARS = (SYS_UPTIME, PSE_POWER, PSE_CONSUMPTION)

IF_NAME = Column("name", "1.3.6.1.2.1.31.1.1.1.1")
IF_ADMIN = Column("admin", "1.3.6.1.2.1.2.2.1.7")
IF_OPER = Column("oper", "1.3.6.1.2.1.2.2.1.8")
IF_IN_ERRORS = Column("in_errors", "1.3.6.1.2.1.2.2.1.14")
IF_HC_IN = Column("in_octets", "1.3.6.1.2.1.31.1.1.1.6")
IF_HC_OUT = Column("out_octets", "1.3.6.1.2.1.31.1.1.1.10")
POE_DETECTION = Column("poe", "1.3.6.1.2.1.105.1.1.1.6")  # pethPsePortDetectionStatus.(group, port)
COLUMNS = (IF_NAME, IF_ADMIN, IF_OPER, IF_IN_ERRORS, IF_HC_IN, IF_HC_OUT, POE_DETECTION)

OPER_STATUS = {
    1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown",
}  # fmt: skip
ADMIN_STATUS = {1: "up", 2: "down", 3: "testing"}
POE_DETECTION_STATUS = {
    1: "disabled", 2: "searching", 3: "deliveringPower", 4: "fault", 5: "test", 6: "otherFault",
}  # fmt: skip

TICKS_WRAP = 1 << 32  # sysUpTime is TimeTicks: hundredths of a second, 32 bits (497 days)
