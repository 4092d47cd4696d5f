"""Alarms: a priority 1 hit or a kennel heat warning or alarm stays at the top of every screen, and sounds, until
an operator acknowledges it. The acknowledgement is stored with who and when (hits.acknowledged_by,
heat_alarms.acknowledged_by) and announced to every console, which drops the alarm too."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from picar.hq.console.auth import local_path
from picar.hq.console.live import Change, announce
from picar.hq.console.page import HttpError, Page, console_of, render_fragment
from picar.hq.console.security import WATCH, require_role
from picar.hq.store import queries
from picar.hq.store.records import HeatAlarm, Hit
from picar.i18n import N_, Translator

log = logging.getLogger("picar.hq.console")

ALARM_PRIORITY = 1  # a hit of this priority sounds
MAX_SHOWN = 50


@dataclass(frozen=True)
class Alarm:
    """One alarm on screen: a P1 hit or a heat alarm (`key` is what the page knows it by)."""

    key: str
    hit: Hit | None = None
    heat: HeatAlarm | None = None


def heat_detail(tr: Translator, alarm: HeatAlarm) -> str:
    """What the car's heat monitor found, worded from its fields (its `reason` is the car's English, for logs),
    as the in-car page words it."""
    p = alarm.payload or {}
    silent, temp = p.get("silent_s"), alarm.temp_c
    if isinstance(silent, int | float) and alarm.state != "alarm":
        return tr._("sensor silent for {n} s", n=tr.integer(int(silent)))
    if temp is None:
        return tr._("no reading yet")
    text = tr.celsius(temp)
    limit = p.get("alarm_c") if alarm.state == "alarm" else p.get("warn_c")
    if isinstance(limit, int | float) and alarm.state == "alarm":
        text = tr._("{temp} (alarm at {limit})", temp=text, limit=tr.celsius(float(limit)))
    elif isinstance(limit, int | float) and alarm.state == "warning":
        text = tr._("{temp} (warning at {limit})", temp=text, limit=tr.celsius(float(limit)))
    if p.get("engine") is True:
        text += " · " + tr._("engine on")
    elif p.get("engine") is False:
        text += " · " + tr._("engine OFF")
    return text


def open_alarms(conn: psycopg.Connection) -> list[Alarm]:
    """Every unacknowledged P1 hit and heat alarm, newest first."""
    hits = queries.recent_hits(conn, MAX_SHOWN, unacknowledged=True, priority=ALARM_PRIORITY)
    heat = queries.heat_alarms(conn, MAX_SHOWN, unacknowledged=True)
    found = [(h.received_at, Alarm(f"hit:{h.event_id}", hit=h)) for h in hits]
    found += [(a.received_at, Alarm(f"heat:{a.event_id}", heat=a)) for a in heat]
    return [alarm for _, alarm in sorted(found, key=lambda x: x[0], reverse=True)]


@require_role(WATCH)
async def alarm_list(request: Request) -> Response:
    """The alarm bar's content (a page re-reads it after its stream reconnects)."""
    alarms = await console_of(request).db.run(open_alarms)
    return HTMLResponse(render_fragment(request, "_alarms.html", alarms=alarms, heat_detail=heat_detail),
                        headers={"Cache-Control": "no-store"})


def _acknowledge(conn: psycopg.Connection, what: str, event_id: str, username: str) -> bool:
    done = (queries.acknowledge_hit if what == "hit" else queries.acknowledge_heat)(conn, event_id, username)
    if done:
        announce(conn, {"kind": "ack", "what": what, "event_id": event_id, "by": username})
    return done


@require_role(WATCH)
async def acknowledge(request: Request) -> Response:
    what, event_id = request.path_params["what"], request.path_params["event_id"]
    if what not in ("hit", "heat"):
        raise HttpError(404, N_("There is no such page."))
    username = request.state.account.username
    done = await console_of(request).db.run(_acknowledge, what, event_id, username)
    if done:
        log.info("console: %s acknowledged %s alarm %s", username, what, event_id)
    if request.headers.get("x-requested-with") == "picar":
        return JSONResponse({"acknowledged": done, "key": f"{what}:{event_id}"})
    return RedirectResponse(local_path(request.state.form.get("next"), "/"), status_code=303)  # without script


def alarm_changed(request: Request, change: Change) -> tuple[str, dict[str, Any]] | None:
    record = change.record
    alarm = None
    if change.kind == "hit" and isinstance(record, Hit) and record.priority == ALARM_PRIORITY \
            and record.acknowledged_at is None:
        alarm = Alarm(f"hit:{record.event_id}", hit=record)
    elif change.kind == "heat" and isinstance(record, HeatAlarm) and record.acknowledged_at is None:
        alarm = Alarm(f"heat:{record.event_id}", heat=record)
    elif change.kind == "ack" and isinstance(record, dict):
        return "alarm-gone", {"key": f"{record['what']}:{record['event_id']}"}
    if alarm is None:
        return None
    html = render_fragment(request, "_alarm.html", a=alarm, heat_detail=heat_detail)
    return "alarm", {"key": alarm.key, "html": html}


PAGE = Page(
    routes=(
        Route("/alarms", alarm_list, methods=["GET"]),
        Route("/alarms/{what}/{event_id}/ack", acknowledge, methods=["POST"]),
    ),
    live=(("hit", alarm_changed), ("heat", alarm_changed), ("ack", alarm_changed)),
)
