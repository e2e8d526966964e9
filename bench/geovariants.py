"""The geocoding bench's test set: gazetteer addresses rewritten the way callers write them.

Written apart from the matcher on purpose: this module never imports ``dashboard.geocode``
(and ``bench/geocode.py`` checks it), so the test set does not share the matcher's idea of
what an address looks like. It reads the demo city's gazetteer as imported (the
``gazetteer`` table, plain SQL) and writes ``bench/data/geocode-testset.csv``
(``text, kind, expected_grid, source``). Each kind is an equal share (``KINDS``):

- ``no_district``: the province, city and district left out (中山路123号);
- ``abbreviation``: the road without its 路/街/大道 (中山123号), 号 left off the end, the
  district by its short name (青山中山路…); a POI by its short name (翠竹 for 翠竹小区, 青山一中
  for 青山区第一中学, …菜场, …社区医院), else by its address shortened;
- ``typo``: one character of the road or POI name replaced by a homophone or a near one
  (its own confusion table), dropped, or two characters swapped;
- ``extra_words``: what callers say around an address (在…, 市民反映…, …附近, …门口, …东侧50米,
  …3栋2单元301室, …旁边垃圾桶满了);
- ``formatting``: full-width digits, Chinese numerals (一百二十三号), spaces, the province and
  city written out, 号 written 號.

Run: ``python bench/geovariants.py [--out bench/data/geocode-testset.csv] [--count 2500]``
(builds the demo city and its gazetteer in a temporary folder, ~20 s).
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text as sql  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

KINDS = ("no_district", "abbreviation", "typo", "extra_words", "formatting")
TESTSET = Path(__file__).resolve().parent / "data" / "geocode-testset.csv"
PROVINCE = "江苏省"
POI_SHARE = 0.25

# Homophones and near characters (同音字/形近字) of the names the demo uses; any other character is
# dropped or swapped instead.
CONFUSIONS = dict(pair.split(":") for pair in (
    "中:钟 山:衫 江:将 河:何 湖:胡 人:仁 民:明 建:健 设:社 和:合 平:萍 胜:圣 利:力 长:常 黄:皇 北:背 京:经 "
    "海:嗨 广:光 州:洲 延:言 安:按 光:广 明:名 复:富 兴:星 东:冬 风:峰 红:宏 星:兴 华:化 泰:太 衡:横 嵩:松 "
    "庐:卢 眉:梅 昆:坤 仑:伦 天:田 太:泰 行:型 燕:雁 秦:琴 岭:领 珠:朱 淮:怀 汉:汗 湘:相 赣:干 闽:敏 钱:前 "
    "塘:唐 西:希 洞:东 庭:亭 鄱:婆 阳:杨 巢:朝 洪:宏 泽:则 香:乡 樟:章 紫:子 薇:微 石:时 榴:流 枫:峰 叶:夜 "
    "松:送 柏:百 杨:阳 柳:留 龙:隆 蟠:盘 虎:乎 踞:据 凤:奉 台:抬 麒:其 麟:林 白:百 云:运 彩:采 虹:宏 火:伙 "
    "曙:署 黎:梨 振:震 繁:凡 荣:容 富:付 强:墙 翠:脆 竹:住 园:圆 桃:逃 源:元 梧:吴 桐:同 荆:经 金:今 桥:乔 "
    "南:男 苑:院 门:们 关:官 岸:案 银:因 杏:幸 桂:贵 丁:钉 棠:堂 玉:遇 兰:蓝 芙:福 蓉:容 荷:河 莲:连 青:清 "
    "涛:滔 凰:黄 锦:今 绣:秀 幸:兴 福:付 晖:辉 晨:陈 新:心 解:姐 放:方 旗:期 友:有 谊:宜 团:图 结:节 育:玉 "
    "才:材 书:输 文:闻 学:雪 府:付 沙:纱 湾:弯 滨:宾 望:忘 月:越 清:青 鹭:路 牙:芽 井:景 元:园 午:五 七:期 "
    "里:理 九:久 梅:眉 樱:英 亭:停 林:琳 居:局 康:慷 乐:了 怡:宜 景:井 瑞:睿 丰:风 永:泳 嘉:家 禾:和 宏:红 "
    "图:途 村:寸 古:鼓 塔:踏 双:霜 三:叁 五:午 春:椿 朝:潮 光:广 凤:奉 科:棵 创:闯 港:巷 龙:笼 高:糕 铁:贴"
).split())
ROAD_SUFFIX = re.compile(r"(大道|街|路)(?=\d)")
PREFIXES = ("在", "市民反映", "报警人称", "位置：", "地址:", "事发地点")
SUFFIXES = ("附近", "门口", "对面", "旁边垃圾桶满了", "东侧50米", "路边", "3栋2单元301室", "5号楼", "西门", "一带")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
CN_DIGITS = "零一二三四五六七八九"


@dataclass(frozen=True)
class Source:
    """A gazetteer entry as imported: what is written and where it is."""

    kind: str
    address: str
    name: str | None
    district: str
    grid_code: str


@dataclass(frozen=True)
class Variant:
    text: str
    kind: str
    expected_grid: str
    source: str


def read_sources(sessions: sessionmaker[Session]) -> list[Source]:
    with sessions() as session:
        rows = session.execute(sql("SELECT kind, address, name, district, grid_code FROM gazetteer ORDER BY id"))
        return [Source(*row) for row in rows]


def chinese(n: int) -> str:
    """123 → 一百二十三 (below 10,000)."""
    if n < 10:
        return CN_DIGITS[n]
    out, started = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit:
            out += ("" if (value == 10 and digit == 1 and not started) else CN_DIGITS[digit]) + unit
            started = True
        elif started and n % value and not out.endswith("零"):
            out += "零"
    return out


def _typo(name: str, rng: random.Random) -> str:
    chars = list(name)
    spots = [i for i, c in enumerate(chars) if c in CONFUSIONS]
    roll = rng.random()
    if spots and roll < 0.75:
        i = rng.choice(spots)
        chars[i] = CONFUSIONS[chars[i]]
    elif roll < 0.88 and len(chars) > 3:
        del chars[rng.randrange(len(chars) - 1)]
    elif len(chars) > 2:
        i = rng.randrange(len(chars) - 1)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def rewrite(src: Source, kind: str, city: str, rng: random.Random) -> str:
    """``src`` as a caller would write it, one kind of change."""
    base = src.address[len(src.district):] if src.address.startswith(src.district) else src.address
    said = src.name if src.kind == "poi" and src.name else base
    with_district = (src.district + said) if said == base else said
    if kind == "no_district":
        return said
    if kind == "abbreviation":
        if src.kind == "poi" and src.name:
            name, short = src.name, src.district.removesuffix("区")
            for word, said_as in (("社区卫生服务中心", "社区医院"), ("菜市场", "菜场"), ("第一中学", "一中")):
                if name.endswith(word):
                    name = name[: -len(word)] + said_as
            if name.startswith(src.district):
                name = short + name[len(src.district):]
            if name.endswith("小区") and len(name) > 3:
                name = name[:-2]
            if name != src.name:
                return name
            # No shorter name people use (派出所, 小学, 公园): its address, shortened.
            return ROAD_SUFFIX.sub("", base, count=1)
        choice = rng.randrange(3)
        if choice == 0:
            return ROAD_SUFFIX.sub("", base, count=1)
        if choice == 1:
            return base[:-1] if base.endswith("号") else base
        return src.district.removesuffix("区") + base
    if kind == "typo":
        if src.kind == "poi" and src.name:
            return _typo(src.name, rng)
        m = re.match(r"(.+?(?:大道|街|路))(.*)", base)
        road, rest = (m.group(1), m.group(2)) if m else (base, "")
        stem = road[:-2] if road.endswith("大道") else road[:-1]
        written = _typo(stem, rng) + road[len(stem):] + rest
        return (src.district + written) if rng.random() < 0.5 else written
    if kind == "extra_words":
        roll = rng.random()
        if roll < 0.35:
            return rng.choice(PREFIXES) + with_district
        if roll < 0.7:
            return said + rng.choice(SUFFIXES)
        return rng.choice(PREFIXES) + said + rng.choice(SUFFIXES)
    # formatting
    roll = rng.random()
    if roll < 0.3:
        return with_district.translate(FULL_WIDTH)
    if roll < 0.55:
        return re.sub(r"\d+", lambda m: chinese(int(m.group())), with_district)
    if roll < 0.75:
        return " ".join([PROVINCE, city, src.district, said]) if said == base else f"{PROVINCE}{city} {said}"
    if roll < 0.9:
        return f"{city}{with_district}".replace("号", "號")
    return f"{PROVINCE}{city}{with_district}".translate(FULL_WIDTH)


def variants(sources: list[Source], count: int, city: str, seed: int = 16) -> list[Variant]:
    """``count`` rewritten addresses, each kind an equal share, a quarter of them of POIs."""
    rng = random.Random(seed)
    houses = [s for s in sources if s.kind == "house"]
    pois = [s for s in sources if s.kind == "poi"]
    out: list[Variant] = []
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        src = rng.choice(pois) if pois and rng.random() < POI_SHARE else rng.choice(houses)
        out.append(Variant(rewrite(src, kind, city, rng), kind, src.grid_code, src.address if src.kind == "house"
                           else f"{src.name}（{src.address}）"))
    return out


def write(path: Path, rows: list[Variant]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "kind", "expected_grid", "source"])
        writer.writerows([v.text, v.kind, v.expected_grid, v.source] for v in rows)


def read(path: Path = TESTSET) -> list[Variant]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [Variant(r["text"], r["kind"], r["expected_grid"], r["source"]) for r in csv.DictReader(fh)]


def demo_database(folder: Path) -> sessionmaker[Session]:
    """The demo city and its gazetteer imported into a SQLite database in ``folder``."""
    from dashboard.demo.democity import generate_city
    from dashboard.demo.gazetteer import generate_gazetteer
    from dashboard.settings import load_settings
    from dashboard.store.cityimport import import_city
    from dashboard.store.db import make_engine, session_factory, upgrade
    from dashboard.store.gazetteer import import_gazetteer

    settings = load_settings(data_dir=folder, database_url=None)
    upgrade(settings)
    sessions = session_factory(make_engine(settings))
    city = folder / "city"
    generate_city(city)
    import_city(city, sessions)
    generate_gazetteer(city)
    import_gazetteer(city / "gazetteer.csv", sessions)
    return sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TESTSET)
    parser.add_argument("--count", type=int, default=2500)
    args = parser.parse_args()
    from dashboard.demo.democity import CITY_NAME

    with tempfile.TemporaryDirectory(prefix="geovariants-") as tmp:
        rows = variants(read_sources(demo_database(Path(tmp))), args.count, CITY_NAME)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write(args.out, rows)
    print(f"{len(rows):,} rewritten addresses in {args.out}: " +
          ", ".join(f"{k} {sum(v.kind == k for v in rows) / len(rows):.0%}" for k in KINDS))


if __name__ == "__main__":
    main()
