"""Where a postcode or a map position is: police force area and council, from real data.

The table is ``domain/data/postcode_areas.json.gz``, built from Ordnance Survey
Code-Point Open (2014) by ``scripts/build_postcode_table.py``; its ``licence`` field
carries the attribution. It holds:

- every postcode sector of Great Britain (``SG8 5``) with the 2014 local authorities of
  its postcodes and how many each holds. A sector is decided when all its postcodes
  agree (the table's ``threshold``, 1.0);
- every unit postcode of a sector that spans two police force areas (or two
  Cambridgeshire councils): such a sector is decided unit by unit, and a postcode of it
  that the data does not hold (a new one, or a mistyped one) is for a person;
- whole postcode areas outside the data: ``BT`` (PSNI), ``JE``, ``GY``, ``IM``;
- a 1 km grid of the force and council of the postcodes in each square, for a map
  position without a postcode: decided only when every postcode within the clearance
  (2 squares, so at least 2 km every way) lies in one force area and the position's own
  square holds postcodes. Anything nearer a boundary, or far from any postcode, is for
  a person.

Everything is pure: no I/O but reading the packaged table once.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import re
import sys
import zlib
from array import array
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = [
    "Authority",
    "Place",
    "PostcodeData",
    "load_postcode_data",
    "normalise_postcode",
    "osgb36_to_bng",
    "wgs84_to_bng",
]

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][0-9A-Z]?)([0-9][A-Z]{2})$")


@dataclass(frozen=True, slots=True)
class Authority:
    """A 2014 local authority (district-level council) and its police force area."""

    code: str
    name: str
    force: str


@dataclass(frozen=True, slots=True)
class Place:
    """What the data says about a postcode or a map position.

    Attributes:
        force: The police force area's agency slug, or None when the data cannot decide
            it (a person must).
        authority: The council area when every postcode behind the decision is in one,
            else None.
        forces: Every force area the postcodes behind the answer lie in.
        basis: The evidence, with its share, as a phrase for a reason sentence.
        place: The main ward of the sector (a place name for the person reading), or None.
    """

    force: str | None
    authority: Authority | None
    forces: tuple[str, ...]
    basis: str
    place: str | None = None


def normalise_postcode(postcode: str) -> tuple[str, str] | None:
    """(outward, inward) of a well-formed postcode (``"cb10 1aa"`` -> ``("CB10", "1AA")``)."""
    match = _POSTCODE.match("".join(postcode.split()).upper())
    return (match.group(1), match.group(2)) if match else None


class PostcodeData:
    """The loaded table, with the two look-ups the rules use."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.licence: str = raw["licence"]
        self.source: str = raw["source"]
        self.threshold: float = float(raw["threshold"])
        forces: list[str] = raw["forces"]
        self.forces = forces
        self.authorities = [Authority(c, n, f) for c, n, f in raw["authorities"]]
        self.places: list[str] = raw["places"]
        self.whole_areas: dict[str, str] = raw["whole_areas"]
        self._sectors: dict[str, str] = raw["sectors"]
        self._units: dict[str, str] = raw["units"]
        grid = raw["grid"]
        self._cell = int(grid["cell_m"])
        self._width = int(grid["width"])
        self._height = int(grid["height"])
        self._clearance = int(grid["clearance_cells"])
        self._grid_forces = zlib.decompress(base64.b64decode(grid["forces_u8"]))
        authorities = array("H")
        authorities.frombytes(zlib.decompress(base64.b64decode(grid["authorities_u16le"])))
        if sys.byteorder != "little":
            authorities.byteswap()
        self._grid_authorities = authorities

    # -- postcodes --------------------------------------------------------------------

    def _split(self, sector: str) -> tuple[list[tuple[Authority, int]], str | None]:
        fields = self._sectors[sector].split(" ")
        place = None
        if fields[-1].startswith("w"):
            place = self.places[int(fields.pop()[1:])]
        split = []
        for field in fields:
            index, count = field.split(":")
            split.append((self.authorities[int(index)], int(count)))
        return split, place

    def _shares(self, split: list[tuple[Authority, int]], total: int) -> str:
        return ", ".join(f"{_percent(count, total)} {a.name}" for a, count in split)

    def lookup(self, postcode: str) -> Place | None:
        """What the data says about a full postcode; None when it knows nothing of it.

        The unit postcode decides in a sector that spans force areas; otherwise the
        sector does. A postcode of a split sector that the data does not hold is
        returned undecided (``force`` None) with the shares of the split, unless every
        postcode of the sector is in one force area.
        """
        parts = normalise_postcode(postcode)
        if parts is None:
            return None
        outward, inward = parts
        area = re.match(r"[A-Z]+", outward)
        assert area is not None  # the pattern guarantees the letters
        if area.group() in self.whole_areas:
            force = self.whole_areas[area.group()]
            return Place(force, None, (force,), f"all of postcode area {area.group()}")
        sector = f"{outward} {inward[0]}"
        if sector not in self._sectors:
            return None
        split, place = self._split(sector)
        total = sum(count for _a, count in split)
        forces = tuple(dict.fromkeys(a.force for a, _c in split))
        top, top_count = split[0]
        if top_count / total >= self.threshold:
            basis = f"all {total:,} postcodes of sector {sector} are in {top.name}"
            return Place(top.force, top, forces, basis, place)
        one_force = (
            f"all {total:,} postcodes of sector {sector} are in this force area, "
            f"{self._shares(split, total)}"
        )
        units = self._units.get(sector)
        found = None if units is None else _find_unit(units, inward[1:])
        if found is not None:
            authority = split[found][0]
            basis = (
                f"unit postcode {outward} {inward} is in {authority.name}, "
                f"in sector {sector} of {self._shares(split, total)}"
            )
            return Place(authority.force, authority, forces, basis, place)
        if len(forces) == 1:  # one force; more than one council
            if units is not None:
                one_force = f"{outward} {inward} is not in the data, but {one_force}"
            return Place(forces[0], None, forces, one_force, place)
        basis = (
            f"{outward} {inward} is not in the data and sector {sector} spans more than "
            f"one force area, {self._shares(split, total)}"
        )
        return Place(None, None, forces, basis, place)

    # -- map positions ----------------------------------------------------------------

    def at_position(self, latitude: float, longitude: float) -> Place | None:
        """What the nearby postcodes say about a WGS84 position; None off the grid."""
        east, north = wgs84_to_bng(latitude, longitude)
        return self.at_grid(east, north)

    def at_grid(self, east: float, north: float) -> Place | None:
        """As :meth:`at_position`, for British National Grid metres."""
        column, row = int(east // self._cell), int(north // self._cell)
        if not (0 <= column < self._width and 0 <= row < self._height):
            return None
        clearance = self._clearance
        if self._grid_forces[row * self._width + column] == 0:
            return Place(
                None, None, (), "no postcode lies in the 1 km grid square of the map position"
            )
        force_values: set[int] = set()
        authority_values: set[int] = set()
        for r in range(max(0, row - clearance), min(self._height, row + clearance + 1)):
            start = r * self._width
            for c in range(max(0, column - clearance), min(self._width, column + clearance + 1)):
                value = self._grid_forces[start + c]
                if value:
                    force_values.add(value)
                    authority_values.add(self._grid_authorities[start + c])
        known = tuple(self.forces[v - 1] for v in sorted(force_values) if v != 255)
        reach = f"{clearance * self._cell // 1000} km"
        if len(force_values) != 1 or 255 in force_values:
            basis = f"postcodes within {reach} of the map position lie in more than one force area"
            return Place(None, None, known, basis)
        authority = None
        if len(authority_values) == 1 and 65535 not in authority_values:
            authority = self.authorities[next(iter(authority_values)) - 1]
        basis = f"every postcode within {reach} of the map position is in this force area"
        if authority is not None:
            basis = f"every postcode within {reach} of the map position is in {authority.name}"
        return Place(known[0], authority, known, basis)


def _find_unit(units: str, key: str) -> int | None:
    """The authority digit of unit ``key`` (two letters) in a sector's unit string.

    The string is 3-character entries, two letters and a digit; two letters side by side
    only occur at the start of an entry, so a plain search cannot match astride two.
    """
    at = units.find(key)
    return int(units[at + 2]) if at >= 0 and at % 3 == 0 else None


def _percent(count: int, total: int) -> str:
    share = 100 * count / total
    return f"{share:.0f}%" if 1 <= share <= 99 else f"{share:.1f}%"


@cache
def load_postcode_data() -> PostcodeData:
    """The packaged table, read once per process."""
    raw = files("domain").joinpath("data", "postcode_areas.json.gz").read_bytes()
    return PostcodeData(json.loads(gzip.decompress(raw)))


# -- WGS84 latitude/longitude -> British National Grid (OSGB36), Ordnance Survey's ------
# "A guide to coordinate systems in Great Britain": a Helmert transformation (about 5 m)
# then the Transverse Mercator projection of the National Grid.

_WGS84 = (6378137.000, 6356752.3141)
_AIRY = (6377563.396, 6356256.909)
_HELMERT = (-446.448, 125.157, -542.060, 20.4894, -0.1502, -0.2470, -0.8421)


def _to_cartesian(lat: float, lon: float, ellipsoid: tuple[float, float]) -> tuple[float, ...]:
    a, b = ellipsoid
    e2 = 1 - (b * b) / (a * a)
    nu = a / math.sqrt(1 - e2 * math.sin(lat) ** 2)
    return (
        nu * math.cos(lat) * math.cos(lon),
        nu * math.cos(lat) * math.sin(lon),
        (1 - e2) * nu * math.sin(lat),
    )


def _to_geodetic(
    x: float, y: float, z: float, ellipsoid: tuple[float, float]
) -> tuple[float, float]:
    a, b = ellipsoid
    e2 = 1 - (b * b) / (a * a)
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1 - e2))
    for _ in range(10):
        nu = a / math.sqrt(1 - e2 * math.sin(lat) ** 2)
        lat = math.atan2(z + e2 * nu * math.sin(lat), p)
    return lat, math.atan2(y, x)


def wgs84_to_bng(latitude: float, longitude: float) -> tuple[float, float]:
    """(easting, northing) in metres on the British National Grid, to about 5 m."""
    x, y, z = _to_cartesian(math.radians(latitude), math.radians(longitude), _WGS84)
    tx, ty, tz, s_ppm, rx, ry, rz = _HELMERT
    s = s_ppm * 1e-6
    rx, ry, rz = (math.radians(v / 3600) for v in (rx, ry, rz))
    x2 = tx + (1 + s) * x - rz * y + ry * z
    y2 = ty + rz * x + (1 + s) * y - rx * z
    z2 = tz - ry * x + rx * y + (1 + s) * z
    lat, lon = _to_geodetic(x2, y2, z2, _AIRY)
    return osgb36_to_bng(math.degrees(lat), math.degrees(lon))


def osgb36_to_bng(latitude: float, longitude: float) -> tuple[float, float]:
    """The National Grid projection of an OSGB36 (Airy 1830) latitude and longitude."""
    lat, lon = math.radians(latitude), math.radians(longitude)
    a, b = _AIRY
    f0, lat0, lon0, e0, n0 = 0.9996012717, math.radians(49), math.radians(-2), 400000, -100000
    e2 = 1 - (b * b) / (a * a)
    n = (a - b) / (a + b)
    sin, cos, tan = math.sin(lat), math.cos(lat), math.tan(lat)
    nu = a * f0 / math.sqrt(1 - e2 * sin * sin)
    rho = a * f0 * (1 - e2) / (1 - e2 * sin * sin) ** 1.5
    eta2 = nu / rho - 1
    dlat, slat = lat - lat0, lat + lat0
    m = (
        b
        * f0
        * (
            (1 + n + 5 / 4 * n**2 + 5 / 4 * n**3) * dlat
            - (3 * n + 3 * n**2 + 21 / 8 * n**3) * math.sin(dlat) * math.cos(slat)
            + (15 / 8 * n**2 + 15 / 8 * n**3) * math.sin(2 * dlat) * math.cos(2 * slat)
            - 35 / 24 * n**3 * math.sin(3 * dlat) * math.cos(3 * slat)
        )
    )
    i = m + n0
    ii = nu / 2 * sin * cos
    iii = nu / 24 * sin * cos**3 * (5 - tan**2 + 9 * eta2)
    iiia = nu / 720 * sin * cos**5 * (61 - 58 * tan**2 + tan**4)
    iv = nu * cos
    v = nu / 6 * cos**3 * (nu / rho - tan**2)
    vi = nu / 120 * cos**5 * (5 - 18 * tan**2 + tan**4 + 14 * eta2 - 58 * tan**2 * eta2)
    dl = lon - lon0
    north = i + ii * dl**2 + iii * dl**4 + iiia * dl**6
    east = e0 + iv * dl + v * dl**3 + vi * dl**5
    return east, north
