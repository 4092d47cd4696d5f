"""The fleet's vocabulary: the codes the car stores and sends (K9 types, outcomes, reject reasons, ...) and
the words shown for them, in one table the pages and the reports share.

The codes stay what they are in the database, on MQTT and in CSV exports; only their display is translated.
A code missing here (a list name HQ made up) is shown as it is, underscores as spaces. The car's own
tuples of codes (picar.station.k9.KINDS, picar.types.REJECT_REASONS, ...) are the authority: a test keeps
these tables naming exactly them.
"""

from __future__ import annotations

from picar.i18n.message import N_

TERMS: dict[str, dict[str, str]] = {
    "k9_type": {
        "track": N_("tracking"),
        "area_search": N_("area search"),
        "building_search": N_("building search"),
        "apprehension": N_("apprehension"),
        "narcotics": N_("narcotics search"),
        "explosives": N_("explosives search"),
        "article_search": N_("article search"),
        "missing_person": N_("missing person search"),
        "officer_protection": N_("officer protection"),
    },
    "k9_outcome": {
        "found": N_("found"),
        "not_found": N_("not found"),
        "apprehended": N_("apprehended"),
        "called_off": N_("called off"),
        "handed_over": N_("handed over"),
        "other": N_("other"),
    },
    "k9_trigger": {
        "manual": N_("started by hand"),
        "door": N_("door pop"),
    },
    "reject_reason": {
        "misread": N_("misread"),
        "wrong_state": N_("wrong state"),
        "not_the_vehicle": N_("not the vehicle"),
        "already_handled": N_("already handled"),
        "other": N_("other"),
    },
    # Watchlist priority: 1 is the highest; 4 and beyond are all "low".
    "priority": {
        "1": N_("urgent"),
        "2": N_("high"),
        "3": N_("medium"),
        "4": N_("low"),
    },
    # The list names the fleet's watchlists use; HQ may add others, shown as they are.
    "list": {
        "stolen_vehicle": N_("stolen vehicle"),
        "stolen_plate": N_("stolen plates"),
        "felony_vehicle": N_("felony vehicle"),  # NCIC's felony vehicle category (picar.watchlist.ncic)
        "wanted": N_("wanted"),
        "wanted_person": N_("wanted person"),
        "missing_person": N_("missing person"),
        "amber": N_("missing child (Amber alert)"),
        "bolo": N_("be on the lookout"),
        "surveillance": N_("under surveillance"),
        "insurance": N_("no valid insurance"),
    },
    # How a read matched its watchlist entry (picar.types.Match.kind).
    "match_kind": {
        "exact": N_("exact"),
        "confusable": N_("confusable"),
        "edit": N_("edit"),
        "wildcard": N_("wildcard"),
    },
    "camera_state": {
        "starting": N_("starting"),
        "streaming": N_("streaming"),
        "reconnecting": N_("reconnecting"),
        "finished": N_("finished"),
        "stopped": N_("stopped"),
    },
    "heat_state": {
        "normal": N_("normal"),
        "warning": N_("warning"),
        "alarm": N_("alarm"),
    },
}

def term(group: str, code: object) -> str:
    """The msgid shown for `code` in `group` (untranslated); an unknown code as it is, underscores as spaces."""
    key = str(code)
    if group == "priority" and key.isdigit() and int(key) > 4:
        key = "4"
    return TERMS.get(group, {}).get(key, key.replace("_", " "))
