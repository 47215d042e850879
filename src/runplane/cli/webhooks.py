"""`runplane webhooks ...`: create, list, show, change, test and remove webhooks,
and see their deliveries (`/v1/webhooks`). A team key manages its team's
webhooks; an admin key every one. A webhook id may be given short, as the
tables show it."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from runplane.cli.output import (
    Column,
    Format,
    OutputOpt,
    age,
    cell,
    chosen,
    is_document,
    print_document,
    resolve_id,
    short_id,
    show_fields,
    show_list,
    styled,
)
from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, out

webhooks_app = typer.Typer(
    help="Webhooks: lifecycle events POSTed to your URL, signed.", no_args_is_help=True
)
BASE = "/v1/webhooks"


def _state(hook: dict[str, Any]) -> str:
    if hook["enabled"]:
        return "failing" if hook.get("failing_since") else "enabled"
    return "disabled"


def _events(hook: dict[str, Any]) -> str:
    return ",".join(hook["event_types"]) or "(all)"


WEBHOOK_COLUMNS = (
    Column("WEBHOOK", lambda h: short_id(h["id"]), table_only=True),
    Column("WEBHOOK", lambda h: h["id"], wide=True),
    Column("TEAM", lambda h: h["team_id"] or "(every team)"),
    Column("URL", lambda h: h["url"]),
    Column("EVENTS", _events),
    Column("STATE", lambda h: styled(_state(h))),
    Column("DISABLED BECAUSE", lambda h: cell(h.get("disabled_reason")), wide=True),
    Column("AGE", lambda h: age(h["created_at"]), table_only=True),
    Column("CREATED", lambda h: h["created_at"], wide=True),
    Column("UPDATED", lambda h: h["updated_at"], wide=True),
)

WEBHOOK_FIELDS = (
    ("id", lambda h: h["id"]),
    ("team_id", lambda h: h["team_id"] or "(every team)"),
    ("url", lambda h: h["url"]),
    ("event_types", _events),
    ("state", lambda h: styled(_state(h))),
    ("disabled_reason", lambda h: cell(h.get("disabled_reason"))),
    ("failing_since", lambda h: cell(h.get("failing_since"))),
    ("created_at", lambda h: f"{h['created_at']} ({age(h['created_at'])} ago)"),
    ("updated_at", lambda h: h["updated_at"]),
)

DELIVERY_COLUMNS = (
    Column("DELIVERY", lambda d: short_id(d["id"]), table_only=True),
    Column("DELIVERY", lambda d: d["id"], wide=True),
    Column("EVENT", lambda d: d["event_type"]),
    Column("RUNTIME", lambda d: cell(d["runtime_id"])),
    Column("STATUS", lambda d: styled(d["status"])),
    Column("ATTEMPTS", lambda d: str(d["attempt_count"])),
    Column("HTTP", lambda d: cell(d["last_status_code"])),
    Column("LATENCY", lambda d: f"{d['last_latency_ms']} ms" if d["last_latency_ms"] else "-"),
    Column("ERROR", lambda d: cell(d["last_error"])),
    Column("NEXT ATTEMPT", lambda d: cell(d["next_attempt_at"]), wide=True),
    Column("AGE", lambda d: age(d["created_at"]), table_only=True),
    Column("CREATED", lambda d: d["created_at"], wide=True),
    Column("EVENT ID", lambda d: d["event_id"], wide=True),
)


def webhook_path(client: Client, webhook_id: str) -> str:
    """The path of the webhook `webhook_id` names (whole, or short as listed)."""
    known = [h["id"] for h in client.call("GET", BASE)["webhooks"]]
    return f"{BASE}/{quote(resolve_id(webhook_id, known), safe='')}"


@webhooks_app.command("create")
def create(
    url_to_call: Annotated[
        str, typer.Argument(metavar="TARGET", help="the URL events are POSTed to")
    ],
    events: Annotated[
        list[str] | None,
        typer.Option("--events", "--event", help="an event type (repeatable or a,b); none: all"),
    ] = None,
    team: Annotated[
        str | None, typer.Option(help="admin keys: the team (unset: every team's events)")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="create it disabled")] = False,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a webhook that POSTs events to TARGET; prints its secret, once.

    TARGET is an argument, not --url: --url is the API's address on every command."""
    types = [t.strip() for value in events or [] for t in value.split(",") if t.strip()]
    body = {"url": url_to_call, "event_types": types, "enabled": not disabled, "team_id": team}
    made = Client(url, api_key).call("POST", BASE, json=body)
    fmt = chosen(output, as_json)
    if is_document(fmt):
        print_document(made, fmt)
        return
    show_fields(made, WEBHOOK_FIELDS, fmt)
    out.print(
        f"secret  {made['secret']}  (shown once: verify signatures with it)",
        highlight=False,
        markup=False,
    )


@webhooks_app.command("ls")
def list_webhooks(
    team: Annotated[str | None, typer.Option(help="only this team's webhooks")] = None,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The webhooks your key may see."""
    params = {"team_id": team} if team else {}
    hooks = Client(url, api_key).call("GET", BASE, params=params)["webhooks"]
    show_list(hooks, WEBHOOK_COLUMNS, chosen(output, as_json))


@webhooks_app.command("get")
def get(
    webhook_id: str,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One webhook."""
    client = Client(url, api_key)
    show_fields(
        client.call("GET", webhook_path(client, webhook_id)),
        WEBHOOK_FIELDS,
        chosen(output, as_json),
    )


def _change(
    webhook_id: str, body: dict[str, Any], fmt: Format, url: str | None, api_key: str | None
) -> None:
    client = Client(url, api_key)
    changed = client.call("PATCH", webhook_path(client, webhook_id), json=body)
    show_fields(changed, WEBHOOK_FIELDS, fmt)


@webhooks_app.command("enable")
def enable(
    webhook_id: str, output: OutputOpt = None, url: UrlOpt = None, api_key: KeyOpt = None
) -> None:
    """Enable a webhook (its failure streak starts again)."""
    _change(webhook_id, {"enabled": True}, chosen(output), url, api_key)


@webhooks_app.command("disable")
def disable(
    webhook_id: str, output: OutputOpt = None, url: UrlOpt = None, api_key: KeyOpt = None
) -> None:
    """Disable a webhook: nothing is sent to it until enabled."""
    _change(webhook_id, {"enabled": False}, chosen(output), url, api_key)


@webhooks_app.command("rm")
def remove(webhook_id: str, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Delete a webhook and its deliveries."""
    client = Client(url, api_key)
    path = webhook_path(client, webhook_id)
    client.call("DELETE", path)
    out.print(f"deleted {path.rsplit('/', 1)[1]}", highlight=False, markup=False)


@webhooks_app.command("test")
def send_test(
    webhook_id: str,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a `runplane.webhook.test` event now (not retried); exit 1 if it failed."""
    client = Client(url, api_key)
    answer = client.call("POST", f"{webhook_path(client, webhook_id)}/test")
    fmt = chosen(output, as_json)
    delivery = answer["delivery"]
    if is_document(fmt):
        print_document(answer, fmt)
    else:
        show_list([delivery], DELIVERY_COLUMNS, fmt)
    if delivery["status"] != "succeeded":
        raise typer.Exit(1)


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: str,
    limit: Annotated[int, typer.Option(help="the newest this many (at most 500)")] = 50,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A webhook's deliveries, newest first, with their status and last attempt."""
    client = Client(url, api_key)
    path = f"{webhook_path(client, webhook_id)}/deliveries"
    found = client.call("GET", path, params={"limit": limit})["deliveries"]
    show_list(found, DELIVERY_COLUMNS, chosen(output, as_json))
