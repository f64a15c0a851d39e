"""The pure core that turns evidence into state: `timeline` (a device's results → its timeline and
outages, the batch engine an import runs) and `live` (the fleet fed round by round, equal to
`timeline` on the same results). No I/O, no clock: instants come with the results."""
