"""Expands recurrence rules with python-dateutil, for the differential test beside this file.

Reads one JSON document from standard input:
  {"cases": [{"id", "dtstart": "YYYY-MM-DDTHH:MM:SS" (wall time), "zone": IANA name,
              "rule": RRULE value, "window": [start, end] as UTC RFC 3339}]}
and writes {"results": {id: {"instants": [...], "dtstart": instant, "dtstartIsInstance": bool}
                           | {"error": text}}}.

dateutil works on naive wall times here; each wall time is then read in the case's zone with
zoneinfo (fold=0: the earlier of a repeated time, the offset before a gap for a missing one, which
is RFC 5545 section 3.3.5's reading of both). A UTC UNTIL is moved to the zone's wall time first.
"""

import json
import re
import signal
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

SECONDS_PER_CASE = 5


class TooSlow(Exception):
    pass


def on_alarm(signum, frame):
    raise TooSlow()


def parse_utc(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utc_text(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wall_rule(rule, zone):
    """The rule with a UTC UNTIL rewritten as the zone's naive wall time."""

    def local(match):
        value = match.group(1)
        if not value.endswith("Z"):
            return "UNTIL=" + value
        instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        return "UNTIL=" + instant.astimezone(zone).strftime("%Y%m%dT%H%M%S")

    return re.sub(r"UNTIL=([0-9TZ]+)", local, rule)


def without_bounds(rule):
    parts = [p for p in rule.split(";") if not p.startswith(("COUNT=", "UNTIL="))]
    return ";".join(parts)


WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def parts_of(rule):
    return dict(part.split("=", 1) for part in rule.split(";"))


def rfc_rule(rule, dtstart):
    """Where dateutil departs from RFC 5545, the rule as RFC 5545 reads it (see the test's notes)."""
    parts = parts_of(rule)
    # Section 3.3.10: what the rule leaves out comes from DTSTART, so BYWEEKNO alone names DTSTART's
    # weekday in those weeks; dateutil takes every day of them.
    if "BYWEEKNO" in parts and not ({"BYDAY", "BYMONTHDAY", "BYYEARDAY"} & parts.keys()):
        rule += ";BYDAY=" + WEEKDAYS[dtstart.weekday()]
    return rule


def walls(rule, dtstart):
    """The rule's wall times. dateutil starts a WEEKLY rule's first week at DTSTART, so BYSETPOS
    counts positions from there; section 3.3.10 counts them in the whole week. So such a rule is run
    from its week's first day, and instances before DTSTART are dropped before COUNT applies."""
    parts = parts_of(rule)
    if parts["FREQ"] != "WEEKLY" or "BYSETPOS" not in parts:
        yield from rrulestr(rule, dtstart=dtstart)
        return
    week_start = WEEKDAYS.index(parts.get("WKST", "MO"))
    aligned = dtstart - timedelta(days=(dtstart.weekday() - week_start) % 7)
    count = int(parts["COUNT"]) if "COUNT" in parts else None
    seen = 0
    unbounded = ";".join(p for p in rule.split(";") if not p.startswith("COUNT="))
    for wall in rrulestr(unbounded, dtstart=aligned):
        if wall < dtstart:
            continue
        if count is not None and seen >= count:
            return
        seen += 1
        yield wall


def expand(case):
    zone = ZoneInfo(case["zone"])
    dtstart = datetime.fromisoformat(case["dtstart"])
    start, end = (parse_utc(t) for t in case["window"])
    rule = rfc_rule(wall_rule(case["rule"], zone), dtstart)
    first = next(walls(rfc_rule(without_bounds(case["rule"]), dtstart), dtstart), None)
    instants = []
    for wall in walls(rule, dtstart):
        instant = wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
        if instant >= end:
            break
        text = utc_text(instant)
        # Two wall times can name one instant (02:30 in a spring-forward gap is 03:30): a recurrence
        # set holds it once.
        if instant >= start and text not in instants:
            instants.append(text)
    return {
        "instants": instants,
        "dtstart": utc_text(dtstart.replace(tzinfo=zone, fold=0)),
        "dtstartIsInstance": first == dtstart,
    }


def main():
    signal.signal(signal.SIGALRM, on_alarm)
    results = {}
    for case in json.load(sys.stdin)["cases"]:
        signal.alarm(SECONDS_PER_CASE)
        try:
            results[case["id"]] = expand(case)
        except TooSlow:
            results[case["id"]] = {"error": f"dateutil took over {SECONDS_PER_CASE} s"}
        except Exception as error:  # reported per case, so one bad rule names itself
            results[case["id"]] = {"error": f"{type(error).__name__}: {error}"}
        finally:
            signal.alarm(0)
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
