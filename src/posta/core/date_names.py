"""Day and month names as Italian writes them: lowercase ("martedì 24 novembre").

Django's Italian catalogue capitalises them ("Martedì 24 Novembre"), and every date
Posta formats (`date` filter, `formats.date_format`, the "On ... wrote" line of a
reply) takes its names from `django.utils.dates` through that catalogue. Posta's own
catalogue comes first (settings.LOCALE_PATHS outranks the catalogues of installed
apps), so its entries for the same message ids replace Django's in every place at once.

Nothing imports this module: it exists so that `makemessages` finds these message ids
in Posta's source and keeps their entries instead of marking them obsolete. The ids
and contexts are exactly those of `django.utils.dates`; English keeps its capitals
because an untranslated id is printed as it is.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

WEEKDAYS = (
    _("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"),
    _("Saturday"), _("Sunday"),
)  # fmt: skip
WEEKDAYS_ABBR = (
    _("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"),
)  # fmt: skip
MONTHS = (
    _("January"), _("February"), _("March"), _("April"), _("May"), _("June"),
    _("July"), _("August"), _("September"), _("October"), _("November"), _("December"),
)  # fmt: skip
# Django's "E" format: the month name a date needs in languages that decline it.
MONTHS_ALT = (
    pgettext_lazy("alt. month", "January"), pgettext_lazy("alt. month", "February"),
    pgettext_lazy("alt. month", "March"), pgettext_lazy("alt. month", "April"),
    pgettext_lazy("alt. month", "May"), pgettext_lazy("alt. month", "June"),
    pgettext_lazy("alt. month", "July"), pgettext_lazy("alt. month", "August"),
    pgettext_lazy("alt. month", "September"), pgettext_lazy("alt. month", "October"),
    pgettext_lazy("alt. month", "November"), pgettext_lazy("alt. month", "December"),
)  # fmt: skip
# Django's "N" format (Associated Press style abbreviations).
MONTHS_AP = (
    pgettext_lazy("abbrev. month", "Jan."), pgettext_lazy("abbrev. month", "Feb."),
    pgettext_lazy("abbrev. month", "March"), pgettext_lazy("abbrev. month", "April"),
    pgettext_lazy("abbrev. month", "May"), pgettext_lazy("abbrev. month", "June"),
    pgettext_lazy("abbrev. month", "July"), pgettext_lazy("abbrev. month", "Aug."),
    pgettext_lazy("abbrev. month", "Sept."), pgettext_lazy("abbrev. month", "Oct."),
    pgettext_lazy("abbrev. month", "Nov."), pgettext_lazy("abbrev. month", "Dec."),
)  # fmt: skip
