"""Chinese templates of the sample corpus generator (sample_corpus.py): the corpus
shipped in `data/zh/`, a synthetic flight-booking set in Simplified Chinese with the ATIS
slot and intent names.

Tokens are characters, as slotfill's `auto` tokenizer and MASSIVE's baselines split
Chinese; digit runs stay whole (`11月2日` is `11 月 2 日`, tagged
`B-arrive_date.month_name I-... B-arrive_date.day_number I-...`). As in English, the
role of a city is set by the words before it: `到达台北` (arrive in Taipei) makes it
`toloc`, `从台北出发` (depart from Taipei) and `离开台北` (leave Taipei) make it
`fromloc`; a date takes its role from the verb (`11月2日到达` arrive_date, `11月2日从...
出发` depart_date). Regenerate with `python -m slotfill.data.sample_corpus --language zh`.
"""

from __future__ import annotations

import re

from slotfill.data.sample_corpus_en import AIRFARE, FLIGHT, Composer, Pairs

SPLIT_SIZES = (("train", 3000), ("valid", 400), ("test", 400))
MAX_TOKENS = 40  # characters

CITIES = (
    "台北", "高雄", "台中", "台南", "花莲", "北京", "上海", "广州", "深圳", "香港", "澳门",
    "成都", "重庆", "杭州", "南京", "武汉", "西安", "厦门", "青岛", "大连", "天津", "昆明",
    "三亚", "长沙", "福州", "沈阳", "郑州", "济南", "哈尔滨", "东京", "大阪", "首尔",
    "新加坡", "曼谷", "吉隆坡", "马尼拉", "河内", "悉尼", "墨尔本", "纽约", "洛杉矶",
    "旧金山", "西雅图", "波士顿", "芝加哥", "温哥华", "多伦多", "伦敦", "巴黎", "柏林",
    "罗马", "马德里", "阿姆斯特丹", "法兰克福", "维也纳", "苏黎世", "迪拜", "莫斯科",
)
HELDOUT_CITIES = ("拉萨", "乌鲁木齐", "加德满都", "雷克雅未克", "开罗", "内罗毕")  # valid/test
AIRLINES = ("中华航空", "长荣航空", "国泰航空", "中国国际航空", "东方航空", "南方航空",
            "海南航空", "日本航空", "全日空", "大韩航空", "新加坡航空", "联合航空",
            "达美航空", "汉莎航空")
CLASSES = ("头等舱", "商务舱", "经济舱")
ROUND_TRIP = ("往返", "往返", "单程")
CHEAPEST = ("最便宜", "最便宜", "最低价")
UNDER = ("低于", "不超过", "少于")
FARES = ("800", "1000", "1500", "2000", "2500", "3000", "4000", "5000", "8000")
PERIODS = ("早上", "上午", "下午", "晚上")
TIME_RELATIVE = {"depart": ("以前", "以后", "左右"), "arrive": ("之前", "以前", "以后")}
WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")
NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")
MONTH_LENGTHS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
MINUTES = ("15", "20", "30", "40", "45", "50")

PREFIXES = {
    "want": ("我想", "我要", "我需要", "我打算", "我们想", "请帮我", "帮我"),
    "show": ("给我看看", "查一下", "帮我查", "请列出", "我想看", "显示"),
    "need": ("我需要", "我想要", "我要", "请帮我找", "帮我订"),
}
LEXICON_SLOTS = {"airline": (AIRLINES, "airline_name"), "class": (CLASSES, "class_type"),
                 "rt": (ROUND_TRIP, "round_trip"), "cheapest": (CHEAPEST, "cost_relative")}
TEMPLATES = (  # the pattern language of sample_corpus.TEMPLATES; words are unspaced
    (10, FLIGHT, "{want?} {md:arrive}|{md:arrive}|{day:arrive} 到达|抵达|飞到 {to}"),
    (8, FLIGHT, "{want?} {md:depart}|{md:depart}|{day:depart} 从 {from} 出发"),
    (6, FLIGHT, "{want?} {md:depart}|{day:depart} 离开 {from}"),
    (8, FLIGHT, "{want?} {date:depart?} 从 {from} 飞往|飞到|去|到 {to}"),
    (8, FLIGHT, "{show?} {date:depart?} 从 {from} 到 {to} 的 |直飞 航班"),
    (4, FLIGHT, "{want?} {date:depart} {time:depart} 从 {from} 出发 去 {to}"),
    (4, FLIGHT, "{want?} {time:arrive} 到达|抵达 {to}"),
    (3, FLIGHT, "{want?} 从 {from} 出发 {time:arrive} 到达 {to}"),
    (3, FLIGHT, "{need} 一张 {date:depart?} 从 {from} 到 {to} 的 {class} 机票"),
    (3, FLIGHT, "{need} 一张 从 {from} 到 {to} 的 {rt} 机票"),
    (3, FLIGHT, "{show} {airline} 从 {from} 飞往 {to} 的 航班"),
    (3, FLIGHT, "{want?} 坐 {airline} 的 飞机 从 {from} 去 {to} |{date:depart}"),
    (2, FLIGHT, "{show} 从 {from} 经停 {stop} 到 {to} 的 航班"),
    (2, FLIGHT, "有没有 {date:depart?} 从 {from} 到 {to} 的 航班"),
    (4, AIRFARE, "从 {from} 到 {to} 的 {cheapest}|{rt} 机票 多少钱"),
    (3, AIRFARE, "{show} 从 {from} 到 {to} {under} 的 机票"),
    (2, AIRFARE, "{date:depart} 从 {from} 到 {to} 的 {class} 票价 是 多少"),
    (3, "atis_flight_time", "从 {from} 到 {to} 的 航班 几点 起飞|出发|到达"),
    (2, "atis_flight_time", "{airline} 从 {from} 飞 {to} 的 航班 什么 时候 到"),
    (3, "atis_airline", "哪些|哪几家 航空公司 有 从 {from} 到 {to} 的 航班"),
    (1, "atis_airline", "哪家 航空公司 飞 {city}"),
    (3, "atis_ground_service", "{city} 有 什么 地面 交通"),
    (2, "atis_ground_service", "{city} 机场 到 市区 怎么 走"),
    (2, "atis_ground_service", "{need} 在 {city} 租车"),
)
_TOKEN = re.compile(r"[0-9]+|[a-z]+|\S")


def chinese_number(n: int) -> str:
    """1..31 in Chinese numerals: 二, 十一, 二十, 三十一."""
    if n <= 10:
        return NUMERALS[n - 1]
    tens, ones = divmod(n, 10)
    return (NUMERALS[tens - 1] if tens > 1 else "") + "十" + (NUMERALS[ones - 1] if ones else "")


class ZhComposer(Composer):
    """Chinese utterances from TEMPLATES; every token a character or a digit run."""

    templates, prefixes, lexicon_slots = TEMPLATES, PREFIXES, LEXICON_SLOTS
    cities, heldout_cities, boosted_city = CITIES, HELDOUT_CITIES, "台北"
    periods = PERIODS

    def finish(self, pairs: Pairs) -> Pairs:
        return pairs

    def words(self, text: str) -> list[str]:
        return _TOKEN.findall(text)

    def _md(self, role: str) -> Pairs:
        """`11月2日`, `11月2号`, `十一月二日`."""
        month = self.rng.index(12)
        day = 1 + self.rng.index(MONTH_LENGTHS[month])
        style = self.rng.weighted(("digits", "hao", "numerals"), (4, 2, 1.5))
        write = chinese_number if style == "numerals" else str
        unit = "号" if style == "hao" or (style == "numerals" and self.rng.chance(0.5)) \
            else "日"
        return (self.span(f"{write(month + 1)}月", f"{role}_date.month_name")
                + self.span(f"{write(day)}{unit}", f"{role}_date.day_number"))

    def _day(self, role: str) -> Pairs:
        lead = self.rng.choice(("", "", "下", "这"))
        day = self.rng.index(7)
        name = (f"周{WEEKDAYS[day]}" if self.rng.chance(0.5) else
                "星期" + ("天" if day == 6 and self.rng.chance(0.5) else WEEKDAYS[day]))
        return self.plain(lead) + self.span(name, f"{role}_date.day_name")

    def _date(self, role: str) -> Pairs:
        relative_weight = 1.5 if role == "depart" else 0
        kind = self.rng.weighted(("md", "day", "relative"), (6, 2.5, relative_weight))
        if kind == "md":
            return self._md(role)
        if kind == "day":
            return self._day(role)
        out = self.span(self.rng.choice(("明天", "明天", "后天", "今天")),
                        "depart_date.date_relative")
        return out + (self._period(role) if self.rng.chance(0.25) else [])

    def _clock(self, role: str) -> Pairs:
        """`5点`, `5点半`, `10点30分`, `下午3点`, `中午`."""
        hour = 1 + self.rng.index(12)
        form = self.rng.weighted(range(5), (4, 1.5, 1.5, 2, 1))
        if form == 0:
            text = f"{hour}点"
        elif form == 1:
            text = f"{hour}点半"
        elif form == 2:
            text = f"{hour}点{self.rng.choice(MINUTES)}分"
        elif form == 3:
            text = f"{self.rng.choice(PERIODS)}{hour}点"
        else:
            text = self.rng.choice(("中午", "中午", "午夜"))
        return self.span(text, f"{role}_time.time")

    def _time(self, role: str) -> Pairs:
        """`5点`, `5点以前` (the relative word follows the time), `晚上`."""
        kind = self.rng.weighted(("at", "relative", "period"), (2, 4, 3))
        if kind == "at":
            return self.plain(self.rng.choice(("", "在"))) + self._clock(role)
        if kind == "relative":
            return self._clock(role) + self.span(self.rng.choice(TIME_RELATIVE[role]),
                                                 f"{role}_time.time_relative")
        return self._period(role)

    def _under(self, _: str) -> Pairs:
        return (self.span(self.rng.choice(UNDER), "cost_relative")
                + self.span(f"{self.rng.choice(FARES)}元", "fare_amount"))
