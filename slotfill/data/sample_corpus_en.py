"""English templates of the sample corpus generator (sample_corpus.py): the ATIS-style
corpus shipped in `data/`, and the composer machinery the Chinese templates
(sample_corpus_zh.py) build on.

The corpus is a synthetic flight-booking data set in the ATIS directory format
(`train/`, `valid/`, `test/`, each with `seq.in`, `seq.out` and `label`). It uses the
real ATIS slot and intent names, ATIS cities plus world cities, many surface forms of
dates and times, and templates in which the role of a city, date or time (origin or
destination, departure or arrival) depends on its left context, sometimes far back.
A few cities are held out of training and only appear in valid/test.

Only `random.Random(seed).random()` is used, whose sequence Python guarantees across
versions; every other random choice is built on top of it. Stdlib only.
"""

from __future__ import annotations

import random

SPLIT_SIZES = (("train", 4000), ("valid", 500), ("test", 500))
HELDOUT_RATE = 0.10  # share of city mentions in valid/test drawn from HELDOUT_CITIES
TAIPEI_RATE = 0.06  # extra probability of `taipei` for any city mention
MAX_TOKENS = 25

Pairs = list[tuple[str, str]]
Example = tuple[list[str], list[str], str]

ATIS_CITIES = (
    "boston", "denver", "dallas", "pittsburgh", "atlanta", "baltimore", "san francisco",
    "philadelphia", "washington", "oakland", "new york", "los angeles", "st. louis",
    "milwaukee", "chicago", "detroit", "houston", "miami", "seattle", "phoenix",
    "cleveland", "cincinnati", "charlotte", "memphis", "nashville", "orlando", "tampa",
    "las vegas", "salt lake city", "minneapolis", "kansas city", "indianapolis",
    "columbus", "toronto", "montreal", "newark", "san diego", "san jose", "fort worth",
    "st. petersburg", "long beach", "burbank",
)
WORLD_CITIES = (
    "taipei", "tokyo", "paris", "london", "seoul", "hong kong", "kuala lumpur",
    "rio de janeiro", "buenos aires", "cairo", "nairobi", "sydney", "singapore",
    "bangkok", "beijing", "shanghai", "osaka", "manila", "jakarta", "hanoi", "mumbai",
    "new delhi", "dubai", "istanbul", "rome", "madrid", "berlin", "amsterdam",
    "frankfurt", "vienna", "zurich", "prague", "moscow", "lisbon", "dublin",
    "mexico city", "sao paulo", "lima", "bogota", "cape town", "melbourne", "auckland",
    "vancouver", "kaohsiung", "tel aviv", "athens",
)
CITIES = ATIS_CITIES + WORLD_CITIES
HELDOUT_CITIES = (  # valid/test only
    "reykjavik", "kathmandu", "addis ababa", "ho chi minh city", "casablanca",
    "helsinki", "anchorage", "tucson",
)
AIRLINES = (
    "united", "delta", "american airlines", "eva air", "china airlines", "continental",
    "us air", "northwest", "twa", "alaska airlines", "lufthansa", "air france",
    "british airways", "cathay pacific", "japan airlines", "korean air",
    "singapore airlines", "qantas", "emirates", "klm",
)
CLASSES = ("first class", "economy", "business class", "coach")
ROUND_TRIP = ("round trip", "round trip", "one way")
CHEAPEST = ("cheapest", "cheapest", "lowest", "least expensive")
UNDER = ("less than", "under", "less than")
FARES = ("150", "200", "250", "300", "400", "500", "600", "750", "1000", "1200")
MINUTES = ("00", "15", "30", "45", "05", "10", "20", "50")  # 1030, 845, 1200...
PERIODS = ("morning", "afternoon", "evening", "night")
TIME_RELATIVE = {"depart_time": ("before", "after", "around"),
                 "arrive_time": ("by", "before", "after")}
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
MONTH_ABBR = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sept", "oct",
              "nov", "dec")
MONTH_LENGTHS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
DATE_STYLES = ("nov 2nd", "november second", "november 2", "november 2nd", "nov 2",
               "the 2nd of november", "the second of november", "2nd november")
DATE_STYLE_WEIGHTS = (3, 3, 2, 2, 1, 1, 0.5, 1)
ORDINAL_WORDS = (  # 1..19; 20..31 are built from these
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
    "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
    "sixteenth", "seventeenth", "eighteenth", "nineteenth",
)
PREFIXES = {  # "" entries make the prefix optional
    "show": ("", "", "", "show me", "show me", "list", "list all", "give me",
             "please list", "please show me", "can you show me", "i would like to see",
             "i need", "find", "find me"),
    "want": ("i want to", "i need to", "i'd like to", "i would like to", "we need to",
             "i have to", "we want to", "i plan to"),
    "need": ("i need", "i want", "i'd like", "i would like", "we need",
             "i'm looking for", "please find me", "can you find me"),
    "tell": ("can you tell me", "please tell me", "i'd like to know", "tell me"),
}
CITY_SLOTS = {"from": "fromloc.city_name", "to": "toloc.city_name",
              "stop": "stoploc.city_name", "city": "city_name"}
LEXICON_SLOTS = {"airline": (AIRLINES, "airline_name"), "class": (CLASSES, "class_type"),
                 "rt": (ROUND_TRIP, "round_trip"), "cheapest": (CHEAPEST, "cost_relative")}

# (weight, intent, pattern). Pattern tokens: a plain word is tagged O; `{kind}` or
# `{kind:role}` is a PREFIXES entry or a slot filler; `{kind?}` is optional; `a|b|c`
# picks one alternative (possibly empty), where `_` stands for a space inside it.
# City and date/time roles are fixed by the template's LEFT context.
FLIGHT, AIRFARE = "atis_flight", "atis_airfare"
TEMPLATES = (
    (10, FLIGHT, "{want?} arrive|arrive|arrive_in {to} on "
                 "{md:arrive}|{md:arrive}|{md:arrive}|{day:arrive}"),
    (10, FLIGHT, "{want?} leave|leave|leave_from {from} on "
                 "{md:depart}|{md:depart}|{md:depart}|{day:depart}"),
    (3, FLIGHT, "{want?} leave_from|depart_from|fly_out_of {from} {date:depart} "
                "|{time:depart}"),
    (3, FLIGHT, "{want} arrive on {md:arrive}|{day:arrive} |at_{clock:arrive} in {to}"),
    (1, FLIGHT, "{want} arrive {time:arrive} on {md:arrive}|{day:arrive} in {to}"),
    (4, FLIGHT, "{want} leave|depart on {md:depart}|{day:depart} at {clock:depart} from "
                "{from} |going_to_{to}|to_go_to_{to}"),
    (5, FLIGHT, "{want} leave {from} {time:depart} and arrive_in|arrive_at|get_to {to} "
                "{time:arrive}"),
    (14, FLIGHT, "{show} flights|flights|nonstop_flights from {from} to {to} "
                 "{date:depart?} {time:depart?} |on_{airline}|{under}||please"),
    (6, FLIGHT, "{show} flights to {to} from {from} {date:depart?} |on_{airline}"),
    (4, FLIGHT, "list|show_me|give_me {airline} flights from {from} to {to} arriving "
                "{md:arrive}|{md:arrive}|on_{day:arrive}|{time:arrive}"),
    (4, FLIGHT, "{show} flights from {from} to {to} that_arrive|arriving|which_arrive "
                "{time:arrive} |{date:arrive}"),
    (4, FLIGHT, "{show} flights from {from} to {to} with_a_stop_in|with_a_stopover_in|"
                "that_stop_in|stopping_in {stop} |{date:depart}"),
    (4, FLIGHT, "{need} a flight from {from} to {to} {date:depart} |{time:depart}"),
    (3, FLIGHT, "{need} a {rt} ticket|flight from {from} to {to} |{date:depart}"),
    (3, FLIGHT, "{need} a {class} ticket|flight from {from} to {to} |on_{airline}"),
    (3, FLIGHT, "{want} fly|go|travel from {from} to {to} {date:depart} |{time:depart}"),
    (3, FLIGHT, "{want} fly|go to {to} from {from} {date:depart}"),
    (3, FLIGHT, "i'm|i_am leaving|flying_out_of {from} {date:depart} "
                "and_going_to|and_flying_to|and_need_to_get_to {to}"),
    (3, FLIGHT, "{show} flights leaving|departing {from} {time:depart} and "
                "arriving_in|arriving_at {to} {time:arrive}"),
    (3, FLIGHT, "{show} flights from {from} to {to} leaving|departing {date:depart} and "
                "arriving {time:arrive}|{date:arrive}"),
    (3, FLIGHT, "{need} a flight that leaves {from} {date:depart} and arrives in {to} "
                "{time:arrive}"),
    (3, FLIGHT, "{need} a flight to {to} that_leaves|that_departs_from {from} "
                "{time:depart}"),
    (2, FLIGHT, "what flights go|are_there|do_you_have from {from} to {to} "
                "|{date:depart}"),
    (3, FLIGHT, "what flights leave {from} {date:depart} |{time:depart} "
                "for|going_to|and_arrive_in {to}"),
    (2, FLIGHT, "is_there_a_flight|are_there_any_flights|do_you_have_a_flight from "
                "{from} to {to} {time:depart}|{date:depart}"),
    (3, FLIGHT, "{show} {airline} flights to {to} from {from} |{date:depart}"),
    (2, FLIGHT, "{show} the {cheapest} flight|flights from {from} to {to} "
                "|{date:depart}"),
    (2, FLIGHT, "{show} {class} flights from {from} to {to} |{date:depart}"),
    (2, FLIGHT, "{show} {period:depart} flights from {from} to {to} |{date:depart}"),
    (2, FLIGHT, "{show} flights from {from} arriving_in|that_arrive_in {to} "
                "{time:arrive} |{date:arrive}"),
    (3, FLIGHT, "{want} arrive in {to} {time:arrive} {date:arrive} "
                "|coming_from_{from}|from_{from}"),
    (2, FLIGHT, "{want} get_to|be_in {to} {time:arrive}|{date:arrive} "
                "|leaving_from_{from}"),
    (2, FLIGHT, "{need} information on|about flights from {from} to {to} "
                "|{date:depart}"),
    (2, FLIGHT, "what are the flights from {from} to {to} "
                "|{date:depart}|{time:depart}|on_{airline}"),
    (2, FLIGHT, "{show} flights on {airline} from {from} to {to} |{date:depart}"),
    (2, FLIGHT, "{show} {rt} flights from {from} to {to} |{date:depart}|{under}"),
    (2, FLIGHT, "{show} flights from {from} to {to} that_leave|leaving {time:depart} "
                "|{date:depart}"),
    (4, AIRFARE, "|{tell} what's|what_is the {cheapest} |{rt} fare|airfare from {from} "
                 "to {to} |{date:depart}|on_{airline}"),
    (3, AIRFARE, "how_much_is|what_is_the_price_of a {class}|{rt}|{class}_{rt} ticket "
                 "from {from} to {to} |{date:depart}"),
    (3, AIRFARE, "{show} fares|airfares|fares from {from} to {to} "
                 "|{under}|on_{airline}"),
    (2, AIRFARE, "what_is|what's the fare|price for the {airline} flight from {from} "
                 "to {to}"),
    (2, AIRFARE, "{show} the {cheapest} fares|airfare to {to} from {from} "
                 "|{date:depart}"),
    (1, AIRFARE, "how much does it cost to fly from {from} to {to} "
                 "|{class}|on_{airline}"),
    (3, "atis_flight_time", "|{tell} what time does the first|last|earliest|latest "
                            "flight leave {from} for|going_to {to} |{date:depart}"),
    (2, "atis_flight_time", "what are the departure_times|arrival_times|flight_times "
                            "from {from} to {to} |{date:depart}"),
    (2, "atis_flight_time", "what time does {airline} fly|depart from {from} to {to} "
                            "|{date:depart}"),
    (1, "atis_flight_time", "when does the {airline} flight from {from} arrive in {to} "
                            "|{date:arrive}"),
    (3, "atis_airline", "|{tell} which|what airlines fly from {from} to {to} "
                        "|{date:depart}"),
    (2, "atis_airline", "what airlines have|offer flights from {from} to {to} "
                        "|{date:depart}|{time:depart}"),
    (1, "atis_airline", "which airline flies to {to} from {from} |{time:depart}"),
    (1, "atis_airline", "which_airlines|what_airlines serve {city}"),
    (3, "atis_ground_service", "what_ground_transportation_is_available_in|"
                               "what_is_the_ground_transportation_in|"
                               "what_kind_of_ground_transportation_is_there_in {city}"),
    (2, "atis_ground_service", "{show}|{need} ground transportation in|for {city}"),
    (2, "atis_ground_service", "is_there|do_they_have a limousine|taxi|bus|rental_car "
                               "service in {city}"),
    (1, "atis_ground_service", "how_do_i|how_can_i get from the airport to downtown "
                               "{city}"),
    (2, "atis_flight#atis_airfare", "{show} flights and fares from {from} to {to} "
                                    "|{date:depart}"),
    (1, "atis_flight#atis_airfare", "list|give_me the flights from {from} to {to} and "
                                    "their fares|prices"),
)


class Rng:
    """All randomness, derived only from `random.Random(seed).random()`."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed).random

    def chance(self, p: float) -> bool:
        return self._random() < p

    def index(self, n: int) -> int:
        return min(int(self._random() * n), n - 1)

    def choice(self, items):
        return items[self.index(len(items))]

    def weighted(self, items, weights):
        target = self._random() * sum(weights)
        for item, weight in zip(items, weights):
            target -= weight
            if target < 0:
                return item
        return items[-1]


def _fix_articles(pairs: Pairs) -> Pairs:
    """`a economy ticket` -> `an economy ticket` (but `a one way ticket`)."""
    return [("an" if word == "a" and nxt[:1] in tuple("aeiou") and nxt != "one" else word, tag)
            for (word, tag), (nxt, _) in zip(pairs, pairs[1:] + [("", "")])]


def _ordinal_digits(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _ordinal_words(n: int) -> str:
    if n < 20:
        return ORDINAL_WORDS[n - 1]
    tens = "twent" if n < 30 else "thirt"
    return f"{tens}ieth" if n % 10 == 0 else f"{tens}y {ORDINAL_WORDS[n % 10 - 1]}"


class Composer:
    """Expands templates into tagged utterances; one instance per split group. The
    language lives in the class attributes and the slot methods (`_md`, `_clock`, ...);
    sample_corpus_zh.py overrides them for Chinese."""

    templates, prefixes = TEMPLATES, PREFIXES
    city_slots, lexicon_slots = CITY_SLOTS, LEXICON_SLOTS
    cities, heldout_cities, boosted_city = CITIES, HELDOUT_CITIES, "taipei"
    periods = PERIODS

    def __init__(self, rng: Rng, heldout: bool) -> None:
        self.rng, self.heldout, self.used = rng, heldout, []

    def utterance(self) -> Example:
        _, intent, pattern = self.rng.weighted(self.templates, [t[0] for t in self.templates])
        self.used = []
        pairs = self.finish(self.expand(pattern))
        return [w for w, _ in pairs], [t for _, t in pairs], intent

    def finish(self, pairs: Pairs) -> Pairs:
        return _fix_articles(pairs)

    def words(self, text: str) -> list[str]:
        """A phrase's tokens."""
        return text.split()

    def plain(self, text: str) -> Pairs:
        return [(word, "O") for word in self.words(text)]

    def span(self, text: str, label: str) -> Pairs:
        return [(word, ("B-" if i == 0 else "I-") + label)
                for i, word in enumerate(self.words(text))]

    def expand(self, pattern: str) -> Pairs:
        out: Pairs = []
        for token in pattern.split():
            if "|" in token or "_" in token:
                out += self.expand(self.rng.choice(token.split("|")).replace("_", " "))
            elif token.startswith("{"):
                optional = token.endswith("?}")
                if not (optional and self.rng.chance(0.5)):
                    out += self.fill(token.strip("{?}"))
            else:
                out += self.plain(token)
        return out

    def fill(self, name: str) -> Pairs:
        """Expand one `{kind}` / `{kind:role}` placeholder."""
        kind, _, role = name.partition(":")
        if kind in self.prefixes:
            return self.plain(self.rng.choice(self.prefixes[kind]))
        if kind in self.city_slots:
            return self.span(self._city_name(), self.city_slots[kind])
        if kind in self.lexicon_slots:
            words, label = self.lexicon_slots[kind]
            return self.span(self.rng.choice(words), label)
        return getattr(self, "_" + kind)(role)

    # -- cities -------------------------------------------------------------------
    def _city_name(self) -> str:
        while True:
            if self.heldout and self.rng.chance(HELDOUT_RATE):
                city = self.rng.choice(self.heldout_cities)
            elif self.rng.chance(TAIPEI_RATE):
                city = self.boosted_city
            else:
                city = self.rng.choice(self.cities)
            if city not in self.used:
                self.used.append(city)
                return city

    # -- dates (role: depart | arrive) --------------------------------------------
    def _md(self, role: str) -> Pairs:
        """Month and day number in one of the surface forms of DATE_STYLES."""
        month = self.rng.index(12)
        day = 1 + self.rng.index(MONTH_LENGTHS[month])
        style = self.rng.weighted(DATE_STYLES, DATE_STYLE_WEIGHTS)
        name = MONTHS[month] if "november" in style else MONTH_ABBR[month]
        number = (_ordinal_words(day) if "second" in style
                  else _ordinal_digits(day) if "2nd" in style else str(day))
        m = self.span(name, f"{role}_date.month_name")
        d = self.span(number, f"{role}_date.day_number")
        if style.startswith("the"):
            return self.plain("the") + d + self.plain("of") + m
        return m + d if style.startswith("nov") else d + m

    def _day(self, role: str) -> Pairs:
        return self.span(self.rng.choice(DAYS), f"{role}_date.day_name")

    def _date(self, role: str) -> Pairs:
        """A date phrase with its preposition, if any: `on nov 2nd`, `next monday`..."""
        relative_weight = 1.5 if role == "depart" else 0  # ATIS: today/tomorrow depart
        kind = self.rng.weighted(("md", "day", "relative"), (6, 2.5, relative_weight))
        if kind == "md":
            return (self.plain("on") if self.rng.chance(0.8) else []) + self._md(role)
        if kind == "day":
            lead = self.rng.choice(("on", "on", "", "next"))
            return self.plain(lead) + self._day(role)
        out = self.span(self.rng.choice(("tomorrow", "tomorrow", "today")),
                    "depart_date.date_relative")
        return out + (self._period(role) if self.rng.chance(0.25) else [])  # tomorrow morning

    # -- times (role: depart | arrive) --------------------------------------------
    def _clock(self, role: str) -> Pairs:
        """A clock time: `5 pm`, `10 o'clock`, `1030`, `230 pm`, `noon`."""
        hour = 1 + self.rng.index(12)
        form = self.rng.weighted(range(4), (4, 1.5, 2, 1))
        if form == 0:
            text = f"{hour} {self.rng.choice(('am', 'pm'))}"
        elif form == 1:
            text = f"{hour} o'clock"
        elif form == 2:
            text = f"{hour}{self.rng.choice(MINUTES)}{self.rng.choice(('', '', ' am', ' pm'))}"
        else:
            text = self.rng.choice(("noon", "noon", "midnight"))
        return self.span(text, f"{role}_time.time")

    def _period(self, role: str) -> Pairs:
        return self.span(self.rng.choice(self.periods), f"{role}_time.period_of_day")

    def _time(self, role: str) -> Pairs:
        """A time phrase: `at 5 pm`, `before noon`, `by 1030`, `in the morning`."""
        kind = self.rng.weighted(("at", "relative", "period"), (2, 4, 3))
        if kind == "at":
            return self.plain("at") + self._clock(role)
        if kind == "relative":
            relative = self.rng.choice(TIME_RELATIVE[f"{role}_time"])
            return self.span(relative, f"{role}_time.time_relative") + self._clock(role)
        period = self._period(role)
        return self.plain("at" if period[0][0] == "night" else "in the") + period

    # -- everything else ----------------------------------------------------------
    def _under(self, _: str) -> Pairs:
        return (self.span(self.rng.choice(UNDER), "cost_relative")
                + self.span(f"{self.rng.choice(FARES)} dollars", "fare_amount"))
