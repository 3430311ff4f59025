"""IP to region: a pluggable lookup with an offline default.

Production plugs a GeoIP database in by setting ``app.state.geo`` to any
object with ``locate(ip) -> Place | None``. The default needs no network and
no database: it knows private and loopback ranges and a small built-in table
(the RFC 5737 documentation ranges stand in for real places in tests and
demos).
"""

from __future__ import annotations

import functools
import ipaddress
import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Place:
    region: str
    latitude: float
    longitude: float


class GeoLookup(Protocol):
    def locate(self, ip: str | None) -> Place | None: ...


LOCAL = Place("local", 0.0, 0.0)

_BUILTIN: tuple[tuple[str, Place], ...] = (
    ("192.0.2.0/24", Place("CN-BJ", 39.90, 116.40)),
    ("198.51.100.0/24", Place("CN-SH", 31.23, 121.47)),
    ("203.0.113.0/24", Place("US-NY", 40.71, -74.01)),
)


class OfflineGeoLookup:
    def __init__(self, table: tuple[tuple[str, Place], ...] = _BUILTIN) -> None:
        self._table = [(ipaddress.ip_network(cidr), place) for cidr, place in table]
        # Addresses repeat (a customer's, a carrier's NAT): parsing and matching once each is enough.
        self.locate = functools.lru_cache(maxsize=8192)(self._locate)

    def _locate(self, ip: str | None) -> Place | None:
        if not ip:
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network, place in self._table:
            if address in network:
                return place
        if address.is_private or address.is_loopback:
            return LOCAL
        return None


def distance_km(a: Place, b: Place) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
