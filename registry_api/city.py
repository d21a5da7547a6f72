"""Reference data of the city: Beijing's 16 districts with their division codes and bounding boxes.

Boxes are approximate (WGS-84 degrees, min_lon, min_lat, max_lon, max_lat), good enough to place synthetic
devices inside the right district and to reject coordinates far outside the city.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CITY_BBOX", "DISTRICTS", "District", "district_by_code"]


class District(NamedTuple):
    code: int
    name: str
    bbox: tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat

    @property
    def center(self) -> tuple[float, float]:
        """(lat, lon) of the box centre."""
        return ((self.bbox[1] + self.bbox[3]) / 2, (self.bbox[0] + self.bbox[2]) / 2)


DISTRICTS: tuple[District, ...] = (
    District(110101, "东城区", (116.38, 39.86, 116.45, 39.97)),
    District(110102, "西城区", (116.32, 39.86, 116.39, 39.97)),
    District(110105, "朝阳区", (116.40, 39.82, 116.64, 40.10)),
    District(110106, "丰台区", (116.07, 39.78, 116.43, 39.90)),
    District(110107, "石景山区", (116.12, 39.88, 116.24, 39.97)),
    District(110108, "海淀区", (116.04, 39.90, 116.39, 40.16)),
    District(110109, "门头沟区", (115.43, 39.83, 116.21, 40.16)),
    District(110111, "房山区", (115.42, 39.49, 116.22, 39.92)),
    District(110112, "通州区", (116.55, 39.62, 116.94, 40.03)),
    District(110113, "顺义区", (116.43, 40.03, 116.98, 40.30)),
    District(110114, "昌平区", (115.95, 40.03, 116.49, 40.39)),
    District(110115, "大兴区", (116.21, 39.44, 116.67, 39.82)),
    District(110116, "怀柔区", (116.27, 40.24, 116.83, 41.04)),
    District(110117, "平谷区", (116.90, 40.03, 117.35, 40.37)),
    District(110118, "密云区", (116.65, 40.22, 117.31, 40.75)),
    District(110119, "延庆区", (115.73, 40.29, 116.33, 40.72)),
)

CITY_BBOX = (115.41, 39.43, 117.51, 41.06)

_BY_CODE = {d.code: d for d in DISTRICTS}


def district_by_code(code: int) -> District | None:
    return _BY_CODE.get(code)
