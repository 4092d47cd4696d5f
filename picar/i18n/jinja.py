"""Jinja2 for pages rendered at the server (the HQ console): one environment per language, autoescaping on,
`_`, `gettext` and `ngettext` fed by the same catalogues, and Babel's formats as filters.

Templates write `{{ _("LIST {version}", version=v) }}` and `{{ ngettext("{n} hit", "{n} hits", n) }}`:
the same `{name}` placeholders as the rest of the catalogue (the values are escaped, the translation is
not markup). No `{% trans %}` blocks (Jinja2's i18n extension): their `%(name)s` placeholders would be a
second style in the one catalogue.
babel.cfg extracts `picar/**/templates/**.html` with Jinja2's own extractor. Needs the `hq` extra (Jinja2).
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import BaseLoader, Environment, select_autoescape
from markupsafe import Markup, escape

from picar.i18n.catalogue import Translator, translator
from picar.i18n.languages import Language
from picar.i18n.terms import term


def _formatted(tr: Translator, plural: bool) -> Any:
    def gettext(msgid: str, **params: Any) -> Markup:
        return Markup(escape(tr._(msgid))).format(**params) if params else escape(tr._(msgid))

    def ngettext(singular: str, many: str, n: int, **params: Any) -> Markup:
        form = tr.plural_form(singular, many, n)
        return Markup(escape(form)).format(**{"n": tr.integer(n), **params})

    return ngettext if plural else gettext


@functools.cache
def environment(loader: BaseLoader, lang: Language) -> Environment:
    """The templates of `loader` in `lang` (cached: one environment per loader and language)."""
    env = Environment(loader=loader, autoescape=select_autoescape(default=True, default_for_string=True))
    tr = translator(lang)
    gettext, ngettext = _formatted(tr, False), _formatted(tr, True)
    env.globals.update(_=gettext, gettext=gettext, ngettext=ngettext, language=lang,
                       term=lambda group, code: tr._(term(group, code)))
    env.filters.update(number=tr.number, integer=tr.integer, percent=tr.percent, datetime=tr.datetime,
                       date=tr.date, time=tr.time)
    return env
