"""python-device-enricher: user agent -> device class, OS family and browser
family, by ordered substring rules (the first rule that matches wins).

    [[pipeline.step]]
    plugin = "python-device-enricher"
    config = { tablet_as_mobile = "false" }

An event without a user agent gets device class "other" and null OS and
browser; a bot's gets "bot" and nulls.
"""

from weir import Event, Fields, enricher

# Lower-cased markers of crawlers, scripts and headless browsers.
BOT_MARKERS = (
    "bot",
    "crawler",
    "spider",
    "slurp",
    "headless",
    "bingpreview",
    "facebookexternalhit",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "scrapy",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "libwww-perl",
    "phantomjs",
)

# Televisions and streaming sticks; before the tablet rules, since Android TV
# agents say "Android" without "Mobile".
TV_MARKERS = (
    "SmartTV",
    "SMART-TV",
    "Smart-TV",
    "SMARTTV",
    "GoogleTV",
    "Android TV",
    "AndroidTV",
    "AppleTV",
    "Apple TV",
    "HbbTV",
    "Web0S",
    "WebOS TV",
    "NetCast",
    "BRAVIA",
    "CrKey",
    "Roku",
    "AFTB",
    "AFTM",
    "AFTS",
    "AFTT",
    "AFTK",
    "AFTR",
    "AFTN",
    "Tizen TV",
    "PlayStation",
    "Xbox",
    "Nintendo",
)

# (marker, OS family) in order: iOS agents say "like Mac OS X", Android and
# ChromeOS ones "Linux", Windows Phone ones "Android" and "iPhone".
OS_RULES = (
    ("Windows Phone", "Windows"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("iPod", "iOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
    ("Ubuntu", "Linux"),
    ("Fedora", "Linux"),
    ("X11", "Linux"),
)

# (marker, browser family) in order: Edge, Opera and Samsung Internet agents
# also say "Chrome/"; nearly every agent says "Safari/".
BROWSER_RULES = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("Edge/", "Edge"),
    ("OPR/", "Opera"),
    ("OPT/", "Opera"),
    ("OPiOS/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chrome"),
    ("Safari/", "Safari"),
)

# Agents seen at most this often are remembered; the cache is emptied when full.
CACHE_SIZE = 4096


class Settings:
    __slots__ = ("tablet_as_mobile", "cache")

    def __init__(self, tablet_as_mobile):
        self.tablet_as_mobile = tablet_as_mobile
        self.cache = {}


def device_class(agent, os_family):
    """mobile, tablet, desktop, tv or other (bots are told apart before)."""
    for marker in TV_MARKERS:
        if marker in agent:
            return "tv"
    if "iPad" in agent or "Tablet" in agent or "Kindle" in agent or "Silk/" in agent:
        return "tablet"
    if "PlayBook" in agent:
        return "tablet"
    if os_family == "Android":
        # Android phones' browsers say "Mobile"; tablets' do not.
        return "mobile" if "Mobile" in agent else "tablet"
    if "iPhone" in agent or "iPod" in agent or "Windows Phone" in agent:
        return "mobile"
    if "Mobi" in agent or "Opera Mini" in agent or "BlackBerry" in agent or "IEMobile" in agent:
        return "mobile"
    if os_family in ("Windows", "macOS", "Linux", "ChromeOS"):
        return "desktop"
    return "other"


def first(rules, agent):
    for marker, family in rules:
        if marker in agent:
            return family
    return None


def browser_family(agent, os_family):
    family = first(BROWSER_RULES, agent)
    if family is None and os_family == "iOS" and "AppleWebKit/" in agent:
        # In-app web views on iOS (no browser token) run Safari's engine.
        return "Safari"
    if family == "Safari" and "Version/" not in agent and os_family == "Android":
        # Old Android stock browsers say "Safari/" too.
        return "other"
    return family or "other"


def classify(agent):
    """(device class, OS family, browser family) of a user agent."""
    if not agent or not agent.strip():
        return "other", None, None
    lower = agent.lower()
    for marker in BOT_MARKERS:
        if marker in lower:
            return "bot", None, None
    os_family = first(OS_RULES, agent) or "other"
    return device_class(agent, os_family), os_family, browser_family(agent, os_family)


@enricher(
    name="python-device-enricher",
    version="0.1.0",
    reads={"user_agent": "text?"},
    writes={"device_class": "text", "os_family": "text?", "browser_family": "text?"},
    config={"tablet_as_mobile": "false"},
)
def enrich(event: Event, out: Fields, settings: Settings) -> None:
    agent = event.get("user_agent")
    cache = settings.cache
    found = cache.get(agent)
    if found is None:
        found = classify(agent)
        if settings.tablet_as_mobile and found[0] == "tablet":
            found = ("mobile", found[1], found[2])
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[agent] = found
    device, os_family, browser = found
    out["device_class"] = device
    out["os_family"] = os_family
    out["browser_family"] = browser


@enrich.setup
def settings(config) -> Settings:
    return Settings(tablet_as_mobile=config.bool("tablet_as_mobile"))
