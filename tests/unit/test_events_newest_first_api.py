"""`GET /v1/events?order=desc`: the newest events first, paged towards the
oldest, validated like the other parameters and scoped to a team key's team."""

from __future__ import annotations

from tests.unit.test_events_api import EventsApi, add_mixed, api

__all__ = ["api"]  # the event routes' fixture, shared


async def ids(api: EventsApi, headers: dict[str, str], **params: str) -> list[str]:
    answer = await api.http.get("/v1/events", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return [e["id"] for e in answer.json()["events"]]


async def test_order_desc_lists_the_newest_first_and_pages_to_the_oldest(api: EventsApi) -> None:
    add_mixed(api.reader)
    admin = await api.key()
    assert await ids(api, admin, order="desc") == ["5-0", "4-0", "3-0", "2-0", "1-0"]
    assert await ids(api, admin, order="asc") == await ids(api, admin)
    first = (
        await api.http.get("/v1/events", params={"order": "desc", "limit": "2"}, headers=admin)
    ).json()
    assert [e["id"] for e in first["events"]] == ["5-0", "4-0"]
    assert first["next_cursor"] == "4-0"
    rest = await ids(api, admin, order="desc", after=first["next_cursor"])
    assert rest == ["3-0", "2-0", "1-0"]
    by_type = await ids(api, admin, order="desc", type="runtime.stop", limit="1")
    assert by_type == ["5-0"]


async def test_a_team_key_reading_newest_first_sees_only_its_team(api: EventsApi) -> None:
    add_mixed(api.reader)
    alpha = await api.key("team-a")
    beta = await api.key("team-b")
    assert await ids(api, alpha, order="desc") == ["4-0", "3-0", "1-0"]
    assert await ids(api, beta, order="desc", limit="1") == ["5-0"]
    # Another team's runtime, or a cursor at another team's event: nothing of theirs.
    assert await ids(api, alpha, order="desc", runtime_id="rt-2") == []
    assert await ids(api, alpha, order="desc", after="5-0") == ["4-0", "3-0", "1-0"]
    assert await ids(api, beta, order="desc", after="4-0") == ["2-0"]


async def test_a_bad_order_is_an_invalid_request(api: EventsApi) -> None:
    admin = await api.key()
    for params in ({"order": "newest"}, {"order": "DESC"}, {"order": "desc", "after": "x"}):
        answer = await api.http.get("/v1/events", params=params, headers=admin)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_request"
    assert (await api.http.get("/v1/events", params={"order": "desc"})).status_code == 401
