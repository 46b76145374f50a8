"""Native tests of the device enricher: `pytest plugins/python-device-enricher`."""

import json

import pytest

import app
from weir.testing import Enriched, InitError, run

IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1")
IPHONE_APP = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
              "(KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]")
PIXEL_APP = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Mobile Safari/537.36 [Pinterest/Android]")
MAC_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
              "Gecko) Version/17.4 Safari/605.1.15")
WINDOWS_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36")
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"

AGENTS = [
    # The agents of examples/events.jsonl.
    (IPAD, "tablet", "iOS", "Safari"),
    (IPHONE_APP, "mobile", "iOS", "Safari"),
    (PIXEL_APP, "mobile", "Android", "Chrome"),
    (MAC_SAFARI, "desktop", "macOS", "Safari"),
    (WINDOWS_CHROME, "desktop", "Windows", "Chrome"),
    (LINUX_FIREFOX, "desktop", "Linux", "Firefox"),
    ("python-requests/2.31.0", "bot", None, None),
    ("curl/8.5.0", "bot", None, None),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", None, None),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot", None, None),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "bot", None, None),
    # Order matters: Edge and Opera say Chrome/, Chrome on iOS says CriOS/ and Safari/.
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "desktop", "Windows", "Edge"),
    ("Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.6367.82 Mobile Safari/537.36 EdgA/124.0.2478.49", "mobile", "Android", "Edge"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0", "desktop", "macOS", "Opera"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", "mobile", "iOS", "Chrome"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15", "mobile", "iOS", "Firefox"),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", "mobile", "Android",
     "Samsung Internet"),
    # Android without "Mobile" is a tablet; Kindle's Silk too.
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", "tablet", "Android", "Chrome"),
    ("Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Silk/124.3.1 like Chrome/124.0.6367.179 Safari/537.36", "tablet", "Android", "Chrome"),
    # Televisions before tablets: Android TV says Android without Mobile.
    ("Mozilla/5.0 (Linux; Android 12; BRAVIA 4K VH2 Build/STT1.211025.001.Z4) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/114.0.5735.196 Safari/537.36", "tv", "Android", "Chrome"),
    ("Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/5.0 Chrome/94.0.4606.31 TV Safari/537.36", "tv", "Linux", "Samsung Internet"),
    ("Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 "
     "Safari/537.36 CrKey/1.56.500000", "tv", "Linux", "Chrome"),
    ("Roku/DVP-12.5 (12.5.0.4178-C7)", "tv", "other", "other"),
    # Windows Phone says Android and iPhone; ChromeOS says Linux.
    ("Mozilla/5.0 (Mobile; Windows Phone 8.1; Android 4.0; ARM; Trident/7.0; Touch; rv:11.0; "
     "IEMobile/11.0; NOKIA; Lumia 635) like iPhone OS 7_0_3 Mac OS X AppleWebKit/537 (KHTML, like "
     "Gecko) Mobile Safari/537", "mobile", "Windows", "Safari"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", "desktop", "ChromeOS", "Chrome"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 "
     "Safari/537.36", "bot", None, None),
    ("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "desktop", "Windows",
     "other"),
    ("okhttp/4.12.0", "other", "other", "other"),
]


def event(agent):
    return json.dumps({"event_id": "e1", "user_agent": agent})


@pytest.mark.parametrize("agent,device,os_family,browser", AGENTS)
def test_agents_are_classified_by_the_first_matching_rule(agent, device, os_family, browser):
    [out] = run(app, [event(agent)])
    assert out == Enriched(
        {"device_class": device, "os_family": os_family, "browser_family": browser}
    )


def test_the_whole_example_batch_is_enriched():
    with open(__file__.rsplit("/", 3)[0] + "/examples/events.jsonl", encoding="utf-8") as f:
        lines = f.read().splitlines()
    out = run(app, lines)
    assert len(out) == len(lines)
    assert all(isinstance(o, Enriched) for o in out)
    classes = {o["device_class"] for o in out}
    assert classes == {"tablet", "mobile", "desktop", "bot", "other"}


def test_missing_or_null_agents_are_other_with_nulls():
    out = run(app, ["{}", '{"user_agent": null}', '{"user_agent": ""}', '{"user_agent": 7}',
                    "not json"])
    for o in out:
        assert o == Enriched({"device_class": "other", "os_family": None, "browser_family": None})
    assert out[0].json == '{"device_class":"other","os_family":null,"browser_family":null}'


def test_tablets_can_count_as_mobile():
    out = run(app, [event(IPAD), event(MAC_SAFARI)], config={"tablet_as_mobile": "true"})
    assert out[0]["device_class"] == "mobile"
    assert out[1]["device_class"] == "desktop"


def test_an_earlier_steps_agent_wins_over_the_payload():
    out = run(app, [event(MAC_SAFARI)], fields=[{"user_agent": IPAD}])
    assert out[0]["device_class"] == "tablet"


def test_configuration_errors_fail_init_naming_the_key():
    with pytest.raises(InitError, match=r"^config `tablet_as_mobil`: unknown key \(known: "
                                        r"tablet_as_mobile\)$"):
        run(app, [], config={"tablet_as_mobil": "true"})
    with pytest.raises(InitError, match=r"^config `tablet_as_mobile`: expected `true` or `false` "
                                        r"\(got `yes`\)$"):
        run(app, [], config={"tablet_as_mobile": "yes"})


def test_describes_what_it_reads_and_writes():
    d = app.enrich.describe()
    assert (d.name, d.version) == ("python-device-enricher", "0.1.0")
    assert [(f.name, f.type, f.nullable) for f in d.reads] == [("user_agent", "text", True)]
    assert [(f.name, f.type, f.nullable) for f in d.writes] == [
        ("device_class", "text", False),
        ("os_family", "text", True),
        ("browser_family", "text", True),
    ]
