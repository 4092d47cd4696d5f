// PiCAR pages in the officer's language: gettext-style lookups and the locale's formats, from the JSON the
// server builds out of the compiled catalogue and Babel's CLDR data (picar/i18n/page.py).
// `_("text {name}", {name})` and `ngettext(one, many, n, params)` are what `pybabel extract` finds here
// and in the pages' scripts; HTML marks translated elements with data-i18n (picar/i18n/extract.py).
// Every text goes in with textContent or setAttribute: a translation is never treated as markup.
"use strict";

const i18n = {
  data: null,                 // {language, languages, messages, plurals, terms, formats}
  texts: new WeakMap(),       // element -> its msgid (the HTML's own text, read once)
  attrs: new WeakMap(),       // element -> {attribute: msgid}
  cookie: "picar_lang",
  endpoint: "/api/i18n",
};

function fill(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (all, key) => (key in params ? String(params[key]) : all));
}

function _(msgid, params) {
  const m = i18n.data && i18n.data.messages[msgid];
  return fill(m || msgid, params);
}

function ngettext(singular, plural, n, params) {
  const forms = i18n.data && i18n.data.plurals[singular];
  let text = n === 1 ? singular : plural;
  if (forms) {
    const category = new Intl.PluralRules(i18nLocale()).select(n);
    text = forms[category] || forms.other || text;
  }
  return fill(text, Object.assign({ n: fmtInteger(n) }, params || {}));
}

// The fleet's words for a code (K9 type, outcome, reject reason, list name, ...); an unknown code as it is.
function term(group, code) {
  const key = group === "priority" && Number(code) > 4 ? "4" : String(code);
  const table = i18n.data && i18n.data.terms[group];
  return (table && table[key]) || key.replace(/_/g, " ");
}

function i18nLocale() {
  return i18n.data ? i18n.data.formats.locale.replace("_", "-") : "en";
}

function upper(text) {
  return String(text).toLocaleUpperCase(i18nLocale());
}

// ---------- numbers and times, with the locale's symbols and patterns ----------

function fmtNumber(x, digits) {
  const f = i18n.data ? i18n.data.formats : { decimal: ".", group: ",", minus: "-" };
  const fixed = Math.abs(x).toFixed(digits || 0);
  const [whole, frac] = fixed.split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, f.group);
  const negative = x < 0 && Number(fixed) !== 0;
  return (negative ? f.minus : "") + grouped + (frac ? f.decimal + frac : "");
}

function fmtInteger(n) { return fmtNumber(Math.round(Number(n) || 0), 0); }

function fmtPercent(fraction) {
  const [before, after] = i18n.data ? i18n.data.formats.percent : ["", "%"];
  return before + fmtNumber(Math.round(fraction * 100), 0) + after;
}

function fmtCelsius(value) {
  const [before, after] = i18n.data ? i18n.data.formats.celsius : ["", "°C"];
  return before + fmtNumber(value, 1) + after;
}

// A Date as the locale's hours, minutes and seconds (the CLDR "Hms" pattern: H, HH, m, mm, s, ss).
function fmtTime(d) {
  const pattern = i18n.data ? i18n.data.formats.time : "HH:mm:ss";
  const parts = { H: d.getHours(), m: d.getMinutes(), s: d.getSeconds() };
  return pattern.replace(/([Hms])\1?/g, (tok) => String(parts[tok[0]]).padStart(tok.length, "0"));
}

// ---------- the page's own text ----------

function normalise(text) { return String(text).split(/\s+/).filter(Boolean).join(" "); }

// Translate every data-i18n element, data-i18n-attr attribute and data-term element under `root`.
function applyStatic(root) {
  const scope = root || document;
  for (const el of scope.querySelectorAll("[data-i18n]")) {
    if (!i18n.texts.has(el)) i18n.texts.set(el, normalise(el.textContent));
    el.textContent = _(i18n.texts.get(el));
  }
  for (const el of scope.querySelectorAll("[data-i18n-attr]")) {
    if (!i18n.attrs.has(el)) {
      const originals = {};
      for (const a of el.dataset.i18nAttr.split(/\s+/).filter(Boolean)) originals[a] = normalise(el.getAttribute(a) || "");
      i18n.attrs.set(el, originals);
    }
    for (const [a, msgid] of Object.entries(i18n.attrs.get(el))) el.setAttribute(a, _(msgid));
  }
  for (const el of scope.querySelectorAll("[data-term]")) {
    const [group, code] = el.dataset.term.split(":");
    el.textContent = upper(term(group, code));
  }
  if (i18n.data) document.documentElement.lang = i18n.data.language;
}

function chosenLanguage() {
  const hit = document.cookie.split(";").map((c) => c.trim().split("=")).find(([k]) => k === i18n.cookie);
  return hit ? decodeURIComponent(hit[1] || "") : "";
}

// Load a language (the officer's choice, remembered in a cookie the server reads too; none: the
// car's configured one) and translate the page. Returns the language code in force.
async function loadLanguage(lang) {
  if (lang) document.cookie = i18n.cookie + "=" + encodeURIComponent(lang) + "; Path=/; SameSite=Strict; Max-Age=31536000";
  const res = await fetch(i18n.endpoint + (lang ? "?lang=" + encodeURIComponent(lang) : ""),
    { credentials: "same-origin", cache: "no-store" });
  if (!res.ok) throw new Error(res.status + " " + res.statusText);
  i18n.data = await res.json();
  applyStatic(document);
  document.documentElement.dataset.i18nReady = i18n.data.language;
  return i18n.data.language;
}
