"""Synthetic but realistic datasets kept where the zone runs, one per demo catalog entry, made from a seed.

The zone never fetches data: each demo entry's rows are generated here, deterministically (same classification
and entry id -> same rows, byte for byte, in any process: `random.Random` seeded with text hashes it with
SHA-512, not with the per-process `hash`), and cached. Columns are the field names of the demo entry's schema
(registry_api.demo.DEMO_CATALOG, checked by the tests); `personal` names the fields that schema marks personal,
which the algorithms refuse as group keys. Datasets are columnar (one tuple per column) so an algorithm scans a
column with `zip` instead of building a dict per row; `rows` gives the dicts when masking needs them.

    dataset_for("城市体征/热线诉求", 5) -> Dataset(name="hotline-complaints#5", columns=(...), ...)

| classification | rows | what |
|---|---|---|
| 城市影像/交通卡口 | 6,720 | 10 checkpoints x 2 directions x 14 days x 24 h: two rush hours, a sampled plate |
| 城市脉搏/环境空气质量 | 8,640 | 12 national stations x 30 days x 24 h: episodes, diurnal cycle, HJ 633 AQI |
| 城市脉搏/供水管网 | 8,064 | 12 pressure sensors x 7 days x 96 quarter-hours: demand dips, a pipe burst |
| 城市脉搏/内涝积水 | 10,800 | 15 underpass sensors x 30 days (flood season) x 24 h: storms, depth, alarm levels |
| 城市体征/热线诉求 | 12,000 | 12345 complaints in Chaoyang over 60 days: rare categories and streets, repeat callers |
| 城市影像/人脸抓拍 | 640 | capture points per district |
| 城市体征/运行指数 | 5,840 | daily city-operation index per district for a year |
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import NamedTuple

from registry_api.city import DISTRICTS
from registry_api.encoding import canonical_json

__all__ = ["DATASET_SPECS", "Dataset", "DatasetSpec", "Scalar", "dataset_for", "generate"]

Scalar = str | int | float  # a cell: ISO-8601 text for times (Beijing time, +08:00), numbers, text
Columns = dict[str, list[Scalar]]
BEIJING = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True, eq=False)  # identity, not a comparison of every cell, and hashable
class Dataset:
    """An immutable columnar table: `columns` in schema order, `data[column]` a tuple of cells per row."""

    name: str
    columns: tuple[str, ...]
    data: Mapping[str, tuple[Scalar, ...]]
    personal: frozenset[str] = field(default_factory=frozenset)  # columns the schema marks personal

    def __len__(self) -> int:
        return len(self.data[self.columns[0]]) if self.columns else 0

    def column(self, name: str) -> tuple[Scalar, ...]:
        """The cells of one column (KeyError for a column the dataset does not have)."""
        return self.data[name]

    @cached_property
    def rows(self) -> list[dict[str, Scalar]]:
        """The rows as dicts (built once and shared: callers must not mutate them)."""
        return list(self.iter_rows())

    def iter_rows(self) -> Iterator[dict[str, Scalar]]:
        """The rows as fresh dicts, one at a time (safe to mutate)."""
        columns = self.columns
        for cells in zip(*(self.data[c] for c in columns), strict=True):
            yield dict(zip(columns, cells, strict=True))

    @cached_property
    def digest(self) -> str:
        """sha256 (hex) of the canonical JSON of name, columns and cells: equal digests, equal bytes."""
        body = {"name": self.name, "columns": list(self.columns), "data": {c: list(self.data[c]) for c in self.columns}}
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()


class DatasetSpec(NamedTuple):
    """How the zone makes the data of one classification: a name, the schema's columns and a generator."""

    name: str
    columns: tuple[str, ...]
    personal: frozenset[str]
    generate: Callable[[random.Random], Columns]


# ---------------------------------------------------------------- shared helpers


def _hours(start: datetime, count: int, step: timedelta = timedelta(hours=1)) -> list[datetime]:
    return [start + i * step for i in range(count)]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _code(prefix: str, district: int, serial: int) -> str:
    """A device code in the demo convention: prefix, district division code, 6-digit serial."""
    return f"{prefix}{district}{serial:06d}"


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-like count: normal approximation above 30 (fast), Knuth's product method below."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


# ---------------------------------------------------------------- 城市影像/交通卡口

_CHECKPOINT_START = datetime(2026, 3, 2, tzinfo=BEIJING)  # a Monday
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, O
_PLATE_CHARS = "0123456789" + _PLATE_LETTERS
_PROVINCES = (("京", 0.85), ("冀", 0.08), ("津", 0.03), ("鲁", 0.015), ("晋", 0.01), ("豫", 0.01), ("蒙", 0.005))
_BEIJING_SERIES = "ABCEFGHJKLMNPQ"  # 京 issuing series letters


def _traffic_profile(hour: int, inbound: bool, weekend: bool) -> float:
    """Share of the peak hourly flow: night trough, morning peak into town, evening peak out of town."""
    night = 0.06 + 0.04 * math.cos(2 * math.pi * (hour - 3) / 24 + math.pi)
    morning = math.exp(-(((hour - 8) / 1.3) ** 2)) * (1.0 if inbound else 0.6)
    evening = math.exp(-(((hour - 18) / 1.6) ** 2)) * (0.6 if inbound else 1.0)
    midday = 0.45 * math.exp(-(((hour - 13) / 3.5) ** 2))
    if weekend:  # no commuter peaks, a broad late-morning to afternoon hump
        return night + 0.55 * math.exp(-(((hour - 14) / 4.0) ** 2))
    return night + morning + evening + midday


def _plate(rng: random.Random) -> str:
    province = rng.choices([p for p, _ in _PROVINCES], weights=[w for _, w in _PROVINCES])[0]
    series = rng.choice(_BEIJING_SERIES) if province == "京" else rng.choice(_PLATE_LETTERS[:8])
    if rng.random() < 0.12:  # new-energy plates: D or F then 5 characters
        return f"{province}{series}{rng.choice('DF')}{''.join(rng.choices('0123456789', k=5))}"
    return f"{province}{series}{''.join(rng.choices(_PLATE_CHARS, k=5))}"


def _checkpoints(rng: random.Random) -> Columns:
    districts = [d.code for d in DISTRICTS]
    checkpoints = [
        (_code("BJ-CAMK-", rng.choice(districts), rng.randrange(1, 1_000_000)), rng.uniform(350, 1600))
        for _ in range(10)
    ]
    commuters = [_plate(rng) for _ in range(2500)]  # the same cars pass again and again
    out: Columns = {c: [] for c in ("hour", "checkpoint_code", "direction", "vehicle_count", "plate_number")}
    for moment in _hours(_CHECKPOINT_START, 14 * 24):
        stamp, weekend = _iso(moment), moment.weekday() >= 5
        for code, peak in checkpoints:
            for direction, inbound in (("进城", True), ("出城", False)):
                mean = peak * _traffic_profile(moment.hour, inbound, weekend) * rng.lognormvariate(0, 0.08)
                count = _poisson(rng, mean)
                out["hour"].append(stamp)
                out["checkpoint_code"].append(code)
                out["direction"].append(direction)
                out["vehicle_count"].append(count)
                out["plate_number"].append(rng.choice(commuters) if rng.random() < 0.4 else _plate(rng))
    return out


# ---------------------------------------------------------------- 城市脉搏/环境空气质量

_AIR_START = datetime(2026, 1, 5, tzinfo=BEIJING)  # winter: heating season, pollution episodes
_STATIONS = (  # national monitoring stations of Beijing: code, (PM factor, NO2 traffic factor)
    ("1001A", 1.05, 1.15),  # 万寿西宫
    ("1002A", 0.80, 0.60),  # 定陵
    ("1003A", 1.08, 1.25),  # 东四
    ("1004A", 1.02, 1.10),  # 天坛
    ("1005A", 1.10, 1.20),  # 农展馆
    ("1006A", 1.04, 1.20),  # 官园
    ("1007A", 0.98, 1.00),  # 海淀区万柳
    ("1008A", 0.95, 0.80),  # 顺义新城
    ("1009A", 0.82, 0.65),  # 怀柔镇
    ("1010A", 0.90, 0.75),  # 昌平镇
    ("1011A", 1.00, 1.05),  # 奥体中心
    ("1012A", 0.97, 0.95),  # 古城
)
# HJ 633-2012 breakpoints: IAQI levels and concentrations (PM2.5 and PM10 24-hour, NO2 1-hour), µg/m³.
_IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
_BREAKPOINTS = {
    "pm25": (0, 35, 75, 115, 150, 250, 350, 500),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "no2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
}


def _iaqi(pollutant: str, concentration: float) -> float:
    points = _BREAKPOINTS[pollutant]
    if concentration >= points[-1]:
        return 500.0
    for i in range(1, len(points)):
        if concentration <= points[i]:
            lo, hi = points[i - 1], points[i]
            return _IAQI[i - 1] + (_IAQI[i] - _IAQI[i - 1]) * (concentration - lo) / (hi - lo)
    return 500.0  # unreachable: the last breakpoint is handled above


def _aqi(pm25: float, pm10: float, no2: float) -> int:
    return math.ceil(max(_iaqi("pm25", pm25), _iaqi("pm10", pm10), _iaqi("no2", no2)))


def _air_quality(rng: random.Random) -> Columns:
    hours = _hours(_AIR_START, 30 * 24)
    # Regional PM2.5 level: log-AR(1) around 45 µg/m³ with build-up episodes and northerly-wind clean-ups.
    level, regional = math.log(45.0), []
    for _ in hours:
        level = 0.985 * level + 0.015 * math.log(45.0) + rng.gauss(0, 0.07)
        if rng.random() < 0.006:  # a cold front: clean air within hours
            level = math.log(rng.uniform(8, 18))
        if rng.random() < 0.004:  # stagnant air: an episode builds
            level += rng.uniform(0.6, 1.2)
        regional.append(min(math.exp(level), 420.0))
    out: Columns = {c: [] for c in ("hour", "station_code", "pm25", "pm10", "no2", "aqi")}
    for moment, base in zip(hours, regional, strict=True):
        stamp, hour = _iso(moment), moment.hour
        night = 1 + 0.22 * math.cos(2 * math.pi * (hour - 23) / 24)  # inversion at night, mixing by afternoon
        traffic = 1 + 0.35 * math.exp(-(((hour - 8) / 1.5) ** 2)) + 0.45 * math.exp(-(((hour - 20) / 2.0) ** 2))
        traffic -= 0.3 * math.exp(-(((hour - 14) / 2.5) ** 2))  # photolysis at midday
        for code, pm_factor, no2_factor in _STATIONS:
            pm25 = max(2.0, base * pm_factor * night * rng.lognormvariate(0, 0.12))
            pm10 = pm25 * rng.uniform(1.25, 1.9) + max(0.0, rng.gauss(5, 6))
            no2 = max(3.0, (18 + 0.25 * pm25) * no2_factor * traffic * rng.lognormvariate(0, 0.15))
            pm25, pm10, no2 = round(pm25, 1), round(pm10, 1), round(no2, 1)
            out["hour"].append(stamp)
            out["station_code"].append(code)
            out["pm25"].append(pm25)
            out["pm10"].append(pm10)
            out["no2"].append(no2)
            out["aqi"].append(_aqi(pm25, pm10, no2))
    return out


# ---------------------------------------------------------------- 城市脉搏/供水管网

_WATER_START = datetime(2026, 4, 6, tzinfo=BEIJING)


def _water_demand(hour: float) -> float:
    """Relative demand: morning and evening peaks, low at night (the pressure dips when demand peaks)."""
    return 0.2 + 0.8 * math.exp(-(((hour - 7.5) / 1.5) ** 2)) + 0.9 * math.exp(-(((hour - 19.5) / 2.0) ** 2))


def _water_pressure(rng: random.Random) -> Columns:
    sensors = [
        (_code("BJ-WTRP-", rng.choice(DISTRICTS).code, rng.randrange(1, 1_000_000)), rng.uniform(0.30, 0.40))
        for _ in range(12)
    ]
    times = _hours(_WATER_START, 7 * 96, timedelta(minutes=15))
    burst_sensor, burst_at = rng.randrange(len(sensors)), rng.randrange(96, len(times) - 16)
    out: Columns = {c: [] for c in ("time", "sensor_code", "pressure_mpa")}
    for index, moment in enumerate(times):
        stamp, demand = _iso(moment), _water_demand(moment.hour + moment.minute / 60)
        for number, (code, static) in enumerate(sensors):
            pressure = static - 0.07 * demand + rng.gauss(0, 0.004)
            if number == burst_sensor and burst_at <= index < burst_at + 10:  # a main burst, then the repair
                pressure -= 0.16 * (1 - (index - burst_at) / 12)
            out["time"].append(stamp)
            out["sensor_code"].append(code)
            out["pressure_mpa"].append(round(max(pressure, 0.05), 3))
    return out


# ---------------------------------------------------------------- 城市脉搏/内涝积水

_FLOOD_START = datetime(2025, 7, 10, tzinfo=BEIJING)  # 主汛期 (main flood season, 七下八上)
_ALARM_DEPTHS_CM = (15.0, 27.0, 40.0)  # alarm levels 1, 2, 3: ankle, half a wheel (closing the underpass), a door


def _flooding(rng: random.Random) -> Columns:
    sensors = [
        (_code("BJ-FLDS-", rng.choice(DISTRICTS).code, rng.randrange(1, 1_000_000)), rng.uniform(0.4, 1.6))
        for _ in range(15)
    ]
    hours = _hours(_FLOOD_START, 30 * 24)
    rain = [0.0] * len(hours)  # mm/h over the city
    for _ in range(rng.randint(5, 8)):  # storms of 2 to 9 hours
        start, length, peak = rng.randrange(len(hours) - 10), rng.randint(2, 9), rng.uniform(8, 70)
        for i in range(length):
            rain[start + i] += peak * math.sin(math.pi * (i + 0.5) / length) * rng.uniform(0.6, 1.2)
    out: Columns = {c: [] for c in ("time", "sensor_code", "water_depth_cm", "alarm_level")}
    depths = [0.0] * len(sensors)
    for moment, falling in zip(hours, rain, strict=True):
        stamp = _iso(moment)
        for number, (code, susceptibility) in enumerate(sensors):
            local = falling * rng.uniform(0.5, 1.5)
            # Pumps drain about half of what stands each hour; light rain drains away at once.
            depth = depths[number] * 0.45 + max(0.0, 0.6 * local * susceptibility - 5.0)
            depths[number] = depth
            level = sum(depth >= threshold for threshold in _ALARM_DEPTHS_CM)
            out["time"].append(stamp)
            out["sensor_code"].append(code)
            out["water_depth_cm"].append(round(depth, 1))
            out["alarm_level"].append(level)
    return out


# ---------------------------------------------------------------- 城市体征/热线诉求

_HOTLINE_START = datetime(2026, 2, 1, tzinfo=BEIJING)
_CATEGORIES = (  # (category, weight): the tail is rare on purpose, so small groups exist
    ("噪音扰民", 16.0),
    ("物业管理", 14.0),
    ("供暖", 11.0),
    ("市容环境", 9.0),
    ("停车管理", 8.0),
    ("道路交通", 7.0),
    ("占道经营", 6.0),
    ("垃圾分类", 5.0),
    ("供水", 4.0),
    ("违法建设", 4.0),
    ("燃气", 3.0),
    ("房屋租赁", 3.0),
    ("宠物扰民", 2.5),
    ("公共设施维修", 2.5),
    ("绿化养护", 1.5),
    ("电梯故障", 1.2),
    ("消费纠纷", 1.0),
    ("古树名木保护", 0.08),
    ("野生动物救助", 0.05),
    ("地下空间安全", 0.03),
)
_STREETS = (  # Chaoyang's streets and area offices, weighted roughly by population; a few are small
    ("望京街道", 6.0), ("劲松街道", 3.5), ("双井街道", 3.5), ("潘家园街道", 3.0), ("八里庄街道", 3.0),
    ("呼家楼街道", 2.5), ("团结湖街道", 2.0), ("三里屯街道", 1.5), ("朝外街道", 1.5), ("建外街道", 1.5),
    ("左家庄街道", 2.0), ("小关街道", 2.0), ("和平街街道", 2.5), ("酒仙桥街道", 2.5), ("麦子店街道", 1.2),
    ("香河园街道", 2.0), ("亚运村街道", 3.0), ("大屯街道", 3.0), ("安贞街道", 2.0), ("奥运村街道", 3.0),
    ("垡头街道", 2.0), ("六里屯街道", 2.0), ("东湖街道", 2.0), ("常营地区", 3.0), ("管庄地区", 2.5),
    ("三间房地区", 2.0), ("平房地区", 2.5), ("高碑店地区", 2.0), ("南磨房地区", 2.0), ("十八里店地区", 3.0),
    ("小红门地区", 1.5), ("豆各庄地区", 1.0), ("王四营地区", 1.0), ("东坝地区", 2.0), ("来广营地区", 2.5),
    ("崔各庄地区", 1.5), ("将台地区", 1.0), ("太阳宫地区", 1.2), ("东风地区", 0.8),
    ("孙河地区", 0.4), ("金盏地区", 0.3), ("黑庄户地区", 0.15), ("首都机场街道", 0.05),
)  # fmt: skip
_SURNAMES = (
    ("王", 7.1), ("李", 7.0), ("张", 6.7), ("刘", 5.4), ("陈", 4.5), ("杨", 3.1), ("赵", 2.3), ("黄", 2.2),
    ("周", 2.1), ("吴", 2.0), ("徐", 1.7), ("孙", 1.5), ("胡", 1.3), ("朱", 1.3), ("高", 1.2), ("林", 1.2),
    ("何", 1.2), ("郭", 1.1), ("马", 1.1), ("罗", 0.9), ("梁", 0.8), ("宋", 0.8), ("郑", 0.8), ("谢", 0.7),
    ("韩", 0.7), ("唐", 0.6), ("冯", 0.6), ("于", 0.6), ("董", 0.5), ("萧", 0.2), ("欧阳", 0.05), ("司马", 0.02),
)  # fmt: skip
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红建国建华志强子涵浩然欣怡宇轩梓涵雨桐一诺思远"
_COMPOUNDS = (
    "团结湖北里", "劲松八区", "望京花园", "双井东院", "潘家园南里", "安贞里", "安慧里", "常营福第", "管庄新村",
    "八里庄北里", "农光里", "金台里", "红庙北里", "华威西里", "大屯里", "慧忠北里", "酒仙桥十街坊", "南湖东园",
)  # fmt: skip
_ISSUES = {
    "噪音扰民": ("夜间施工噪音", "楼下商铺音响声音过大", "广场舞音响扰民"),
    "物业管理": ("物业不作为，楼道杂物长期不清理", "物业费收取不透明", "门禁损坏无人维修"),
    "供暖": ("室内温度不达标，只有十六度", "暖气不热", "供暖管道漏水"),
    "市容环境": ("道路积尘严重", "小广告随处张贴", "垃圾桶满溢无人清运"),
    "停车管理": ("小区周边乱停车堵塞消防通道", "共享单车堆积占用人行道", "停车收费不合理"),
    "道路交通": ("路口信号灯配时不合理", "道路破损坑洼", "早高峰拥堵严重"),
    "占道经营": ("早市摊贩占道经营", "店外经营占用人行道", "夜市油烟扰民"),
    "垃圾分类": ("垃圾分类桶站设置不合理", "厨余垃圾清运不及时", "桶前值守缺失"),
    "供水": ("水压低，高层用水困难", "自来水发黄", "计划停水未提前通知"),
    "违法建设": ("楼顶私搭乱建", "底商违规扩建", "绿地被圈占"),
    "燃气": ("楼道有燃气味", "燃气表故障", "燃气费缴纳异常"),
    "房屋租赁": ("群租房安全隐患", "中介不退押金", "租金违规上涨"),
    "宠物扰民": ("犬只不拴绳", "楼道宠物粪便无人清理", "犬吠扰民"),
    "公共设施维修": ("路灯不亮", "健身器材损坏", "井盖缺失"),
    "绿化养护": ("树木遮挡采光需修剪", "绿地缺乏养护", "枯树存在倒伏隐患"),
    "电梯故障": ("电梯频繁停运", "电梯困人", "老楼加装电梯进展缓慢"),
    "消费纠纷": ("预付卡商家关门跑路", "商家拒绝退款", "外卖食品安全问题"),
    "古树名木保护": ("古树周边违规施工",),
    "野生动物救助": ("小区内发现受伤的猛禽",),
    "地下空间安全": ("地下室违规住人",),
}
_HOUR_WEIGHTS = (  # calls per hour of the day (the line is staffed 24 h; most calls in office hours)
    0.5, 0.3, 0.2, 0.2, 0.2, 0.4, 1.0, 2.5, 5.0, 7.0, 7.5, 7.0, 5.5, 6.0, 6.5, 6.5, 6.0, 5.5, 4.5, 4.0, 3.5, 3.0,
    2.0, 1.0,
)  # fmt: skip


_SURNAME_CUMULATIVE = tuple(itertools.accumulate(w for _, w in _SURNAMES))
_CATEGORY_CUMULATIVE = tuple(itertools.accumulate(w for _, w in _CATEGORIES))
_STREET_CUMULATIVE = tuple(itertools.accumulate(w for _, w in _STREETS))
_HOUR_CUMULATIVE = tuple(itertools.accumulate(_HOUR_WEIGHTS))


def _name(rng: random.Random) -> str:
    surname = rng.choices(_SURNAMES, cum_weights=_SURNAME_CUMULATIVE)[0][0]
    return surname + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2, 2))))


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def _hotline(rng: random.Random) -> Columns:
    regulars = [(_name(rng), _phone(rng)) for _ in range(300)]  # people who call again and again
    total, days = 12_000, 60
    # Drawn column by column (choices with cumulative weights, k=total): a tenth of the time of per-row draws.
    day_of = sorted(rng.choices(range(days), k=total))
    hours = rng.choices(range(24), cum_weights=_HOUR_CUMULATIVE, k=total)
    categories: list[Scalar] = [c for c, _ in rng.choices(_CATEGORIES, cum_weights=_CATEGORY_CUMULATIVE, k=total)]
    streets: list[Scalar] = [s for s, _ in rng.choices(_STREETS, cum_weights=_STREET_CUMULATIVE, k=total)]
    out: Columns = {"received_at": [], "category": categories, "street": streets}
    out |= {"caller_name": [], "caller_phone": [], "content": []}
    for day, hour, category, street in zip(day_of, hours, categories, streets, strict=True):
        moment = _HOTLINE_START + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
        name, phone = rng.choice(regulars) if rng.random() < 0.1 else (_name(rng), _phone(rng))
        content = (
            f"来电人{name}反映：{street}{rng.choice(_COMPOUNDS)}{rng.randint(1, 30)}号楼{rng.randint(1, 6)}单元附近"
            f"{rng.choice(_ISSUES[category])}，已持续{rng.randint(1, 20)}天，希望相关部门尽快处理并回复。"
        )
        out["received_at"].append(_iso(moment))
        out["caller_name"].append(name)
        out["caller_phone"].append(phone)
        out["content"].append(content)
    return out


# ---------------------------------------------------------------- 城市影像/人脸抓拍, 城市体征/运行指数


def _face_points(rng: random.Random) -> Columns:
    out: Columns = {"point_code": [], "district": []}
    for district in DISTRICTS:
        urban = district.code < 110109  # the six urban districts have most capture points
        for _ in range(rng.randint(50, 80) if urban else rng.randint(15, 40)):
            out["point_code"].append(_code("BJ-CAMF-", district.code, rng.randrange(1, 1_000_000)))
            out["district"].append(district.code)
    order = sorted(range(len(out["point_code"])), key=lambda i: out["point_code"][i])
    return {name: [values[i] for i in order] for name, values in out.items()}


def _operation_index(rng: random.Random) -> Columns:
    out: Columns = {"day": [], "district": [], "index": []}
    start = date(2025, 1, 1)
    levels = {d.code: rng.uniform(72, 88) for d in DISTRICTS}
    for offset in range(365):
        day = start + timedelta(days=offset)
        season = 3 * math.cos(2 * math.pi * (offset - 200) / 365)  # summer storms and winter heating weigh on it
        for district in DISTRICTS:
            levels[district.code] = 0.9 * levels[district.code] + 0.1 * (80 + season) + rng.gauss(0, 1.2)
            out["day"].append(day.isoformat())
            out["district"].append(district.code)
            out["index"].append(round(min(99.0, max(50.0, levels[district.code])), 2))
    return out


# ---------------------------------------------------------------- registry


def _spec(name: str, columns: str, personal: str, generator: Callable[[random.Random], Columns]) -> DatasetSpec:
    return DatasetSpec(name, tuple(columns.split()), frozenset(personal.split()), generator)


DATASET_SPECS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "城市影像/交通卡口": _spec(
            "checkpoint-counts",
            "hour checkpoint_code direction vehicle_count plate_number",
            "plate_number",
            _checkpoints,
        ),
        "城市脉搏/环境空气质量": _spec("air-quality", "hour station_code pm25 pm10 no2 aqi", "", _air_quality),
        "城市脉搏/供水管网": _spec("water-pressure", "time sensor_code pressure_mpa", "", _water_pressure),
        "城市脉搏/内涝积水": _spec("flooding", "time sensor_code water_depth_cm alarm_level", "", _flooding),
        "城市体征/热线诉求": _spec(
            "hotline-complaints",
            "received_at category street caller_name caller_phone content",
            "caller_name caller_phone content",
            _hotline,
        ),
        "城市影像/人脸抓拍": _spec("face-capture-points", "point_code district", "", _face_points),
        "城市体征/运行指数": _spec("operation-index", "day district index", "", _operation_index),
    }
)


def generate(classification: str, seed: int | str) -> Dataset | None:
    """A fresh (uncached) dataset for a classification from any seed, or None if none is generated for it."""
    spec = DATASET_SPECS.get(classification)
    if spec is None:
        return None
    rng = random.Random(f"{classification}#{seed}")  # text seeds hash with SHA-512: the same in every process
    columns = spec.generate(rng)
    if tuple(columns) != spec.columns:  # a generator out of step with its spec is a bug, not bad input
        raise RuntimeError(f"{spec.name}: generated columns {tuple(columns)} differ from {spec.columns}")
    data = MappingProxyType({name: tuple(cells) for name, cells in columns.items()})
    return Dataset(name=f"{spec.name}#{seed}", columns=spec.columns, data=data, personal=spec.personal)


@lru_cache(maxsize=32)
def dataset_for(classification: str, entry_id: int) -> Dataset | None:
    """The zone's dataset of a catalog entry, picked by its classification and seeded by its id (cached).

    None when the zone keeps no data for that classification.
    """
    return generate(classification, entry_id)
