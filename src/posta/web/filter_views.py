"""The Filters tab of the mail settings (issue 12): list, order, edit, where they
run, and "apply to existing mail". Thin: posta.rules.filters and posta.rules.scan
do the work (database only; the rules worker talks to the servers)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from posta.accounts.models import Account, Folder
from posta.accounts.services import access_account
from posta.core.errors import PostaError
from posta.rules import filters, scan
from posta.rules.filter_models import FilterRule, FilterServer
from posta.web import params
from posta.web.utils import current_user

BLANK_CONDITIONS = 2
BLANK_ACTIONS = 2


def _states(user: Any, rules: list[FilterRule]) -> dict[int, list[dict[str, Any]]]:
    """{rule id: [{account, state, problems}]} for the list."""
    servers = filters.server_states(user)
    accounts = list(Account.objects.filter(user=user))
    out: dict[int, list[dict[str, Any]]] = {r.pk: [] for r in rules}
    for account in accounts:
        server = servers.get(account.pk)
        on_server = server is not None and server.runs_on_server
        for rule in rules:
            if rule.account_id not in (None, account.pk):
                continue
            resolved = filters.resolve(rule, account)
            if resolved.broken:
                state, label = "broken", _("broken")
            elif not rule.enabled:
                state, label = "off", _("off")
            elif on_server:
                state, label = "server", _("running on the server")
            else:
                state, label = "posta", _("run by Posta")
            out[rule.pk].append(
                {"account": account, "state": state, "label": label,
                 "problems": resolved.problems}
            )
    return out


def _server_rows(user: Any) -> list[dict[str, Any]]:
    servers = filters.server_states(user)
    rows = []
    for account in Account.objects.filter(user=user):
        server = servers.get(account.pk) or FilterServer(account=account)
        rows.append({"account": account, "server": server, "words": _server_words(server)})
    return rows


def _server_words(server: FilterServer) -> str:
    if server.runs_on_server:
        if server.other_script:
            return _("Your filters run on the mail server. Your own script “%(name)s” "
                     "stays, and runs after them.") % {"name": server.other_script}
        return _("Your filters run on the mail server, also while Posta is off.")
    if not server.use_server:
        return _("Posta runs your filters on new mail (you switched server filters off).")
    if server.state == FilterServer.State.SERVER:
        return _("Your latest changes are being sent to the mail server.")
    if server.state == FilterServer.State.ERROR:
        return _("The mail server refused the filters (%(words)s); Posta runs them "
                 "meanwhile.") % {"words": server.reason_detail}
    if server.reason_code == "other_script":
        return _("Another filter script, “%(name)s”, is active on the mail server and it "
                 "cannot include others: Posta leaves it active and runs these filters "
                 "itself.") % {"name": server.reason_detail}
    if server.reason_code == "missing_extensions":
        return _("The mail server lacks what some filters need (%(what)s): Posta runs "
                 "them instead.") % {"what": server.reason_detail}
    if server.state == FilterServer.State.UNKNOWN:
        return _("Posta runs your filters; the server has not been checked yet.")
    return _("The mail server offers no filters of its own: Posta runs them on new mail.")


@login_required
def filter_list(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    rules = filters.rules_of(user)
    states = _states(user, rules)
    rows = [
        {"rule": r, "summary": filters.summary(r), "states": states[r.pk],
         "broken": any(s["state"] == "broken" for s in states[r.pk]),
         "first": i == 0, "last": i == len(rules) - 1}
        for i, r in enumerate(rules)
    ]
    folders = Folder.objects.filter(account__user=user, selectable=True).select_related(
        "account"
    ).order_by("account_id", "display_name")
    return render(request, "web/filters.html", {
        "tab": "filters",
        "rows": rows,
        "servers": _server_rows(user),
        "folders": folders,
        "scans": scan.latest_scans(user),
    })


def _rows(data: Any, prefix: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    columns = {n: data.getlist(f"{prefix}_{n}") for n in names}
    count = max((len(v) for v in columns.values()), default=0)
    if count > 50:
        raise params.bad_parameter(prefix, _("too many rows."))
    out = []
    for i in range(count):
        row = {n: (columns[n][i] if i < len(columns[n]) else "")[:1000] for n in names}
        out.append(row)
    return out


def _rule_data(request: HttpRequest) -> filters.RuleData:
    post = request.POST
    conditions = [
        r for r in _rows(post, "cond", ("field", "op", "value", "header")) if r["field"]
    ]
    actions = [r for r in _rows(post, "act", ("kind", "folder", "address")) if r["kind"]]
    return filters.RuleData(
        name=params.text(post, "name", max_length=200),
        account_id=params.optional_id(post, "account"),
        enabled=params.flag(post, "enabled"),
        match_all=params.choice(post, "match", choices=("all", "any"), default="all") == "all",
        case_sensitive=params.flag(post, "case_sensitive"),
        stop=params.flag(post, "stop"),
        conditions=conditions,
        actions=actions,
    )


def _form(request: HttpRequest, rule: FilterRule | None, data: filters.RuleData,
          error: str = "", status: int = 200) -> HttpResponse:
    user = current_user(request)
    conditions = list(data.conditions) + [{} for _i in range(BLANK_CONDITIONS)]
    actions = list(data.actions) + [{} for _i in range(BLANK_ACTIONS)]
    return render(request, "web/filter_form.html", {
        "tab": "filters",
        "rule": rule,
        "data": data,
        "conditions": conditions,
        "actions": actions,
        "accounts": Account.objects.filter(user=user),
        "folders": Folder.objects.filter(account__user=user, selectable=True)
        .select_related("account").order_by("account_id", "display_name"),
        "fields": list(filters.FIELD_LABELS.items()),
        "operators": list(filters.OPERATOR_LABELS.items()),
        "action_kinds": list(filters.ACTION_LABELS.items()),
        "error": error,
    }, status=status)


def _data_of(rule: FilterRule) -> filters.RuleData:
    conditions = []
    for c in rule.conditions:
        row = dict(c)
        if c["field"] == "size":
            row["value"] = str(int(c.get("size", 0)) // 1024)
        conditions.append(row)
    actions = []
    for a in rule.actions:
        row = dict(a)
        if "folder" in a:
            target = Folder.objects.filter(
                account__user=rule.user, name=a["folder"],
                **({"account_id": rule.account_id} if rule.account_id else {}),
            ).first()
            row["folder"] = str(target.pk) if target else ""
        actions.append(row)
    return filters.RuleData(
        name=rule.name, account_id=rule.account_id, enabled=rule.enabled,
        match_all=rule.match_all, case_sensitive=rule.case_sensitive, stop=rule.stop,
        conditions=conditions, actions=actions,
    )


def _save(request: HttpRequest, rule: FilterRule | None) -> HttpResponse:
    data = _rule_data(request)
    try:
        filters.check_save_rule(current_user(request), rule, data)
    except PostaError as error:
        if error.status == 404:
            raise
        return _form(request, rule, data, error=str(error.message), status=400)
    messages.success(request, _("Filter saved."))
    return redirect("filters")


@login_required
def filter_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    user = current_user(request)
    message_id = params.optional_id(request.GET, "message")
    data = (
        filters.prefill_from_message(user, message_id) if message_id is not None
        else filters.RuleData(conditions=[{"field": "from", "op": "contains"}],
                              actions=[{"kind": "move"}])
    )
    return _form(request, None, data)


@login_required
def filter_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = filters.access_rule(current_user(request), rule_id)
    if request.method == "POST":
        return _save(request, rule)
    return _form(request, rule, _data_of(rule))


@login_required
@require_POST
def filter_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    user = current_user(request)
    filters.do_delete_rule(user, filters.access_rule(user, rule_id))
    messages.success(request, _("Filter deleted."))
    return redirect("filters")


@login_required
@require_POST
def filter_toggle(request: HttpRequest, rule_id: int) -> HttpResponse:
    user = current_user(request)
    rule = filters.access_rule(user, rule_id)
    filters.do_set_enabled(user, rule, not rule.enabled)
    return redirect("filters")


@login_required
@require_POST
def filter_move(request: HttpRequest, rule_id: int) -> HttpResponse:
    user = current_user(request)
    rule = filters.access_rule(user, rule_id)
    direction = params.choice(request.POST, "direction", choices=("up", "down"), default="up")
    filters.do_move_rule(user, rule, -1 if direction == "up" else 1)
    return redirect(reverse("filters") + f"#filter-{rule.pk}")


@login_required
@require_POST
def filter_order(request: HttpRequest) -> HttpResponse:
    """The new order after a drag: `ids`, comma-separated."""
    user = current_user(request)
    ids = params.id_list(request.POST.get("ids", "").split(","), name="ids", max_count=1000)
    filters.do_reorder(user, ids)
    return JsonResponse({"ok": True})


@login_required
@require_POST
def filter_server(request: HttpRequest, account_id: int) -> HttpResponse:
    user = current_user(request)
    account = access_account(user, account_id)
    filters.do_set_use_server(user, account, params.flag(request.POST, "use_server"))
    messages.success(request, _("Saved: the change reaches the mail server in a moment."))
    return redirect("filters")


@login_required
@require_POST
def scan_start(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    folder_id = params.parse_id(request.POST.get("folder", ""), name="folder")
    try:
        scan.do_start_scan(user, folder_id)
    except PostaError as error:
        if error.status == 404:
            raise
        messages.error(request, str(error.message))
    return redirect("filters")


@login_required
def scan_status(request: HttpRequest, job_id: int) -> HttpResponse:
    job = scan.access_scan(current_user(request), job_id)
    return render(request, "web/_filter_scan.html", {"job": job})


@login_required
@require_POST
def scan_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    user = current_user(request)
    scan.do_cancel_scan(user, scan.access_scan(user, job_id))
    return redirect("filters")
