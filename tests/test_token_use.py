"""Token use (issue 11): `last_used_at` in `GET /api/v1/tokens`, written at most once a
minute per token; and the one-second token memory of issue 13, which a revocation in this
process beats at once and one made elsewhere within `token_cache.TTL_S`."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from app.db.models import ApiToken
from app.services.accounts import token_cache

ME = "/api/v1/users/me"


def _rows(client, headers) -> dict[str, dict]:
    listed = client.get("/api/v1/tokens", headers=headers)
    assert listed.status_code == 200
    return {row["name"]: row for row in listed.json()}


def _set_last_used(db, token_id: int, ago: timedelta) -> datetime:
    db.execute(
        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=func.now() - ago)
    )
    db.commit()
    token_cache.forget_all()  # as if the server had not seen the token for a while
    return db.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))


def test_the_token_list_shows_when_each_token_was_last_used(client, make_user, token_for):
    headers = token_for(make_user("labeler", "lena"))
    made = client.post("/api/v1/tokens", json={"name": "laptop"}, headers=headers)
    assert made.status_code == 201 and made.json()["last_used_at"] is None
    rows = _rows(client, headers)
    assert rows["cli"]["last_used_at"] is not None  # it authenticated these requests
    assert rows["laptop"]["last_used_at"] is None  # never used yet
    laptop = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get(ME, headers=laptop).status_code == 200
    used = datetime.fromisoformat(_rows(client, headers)["laptop"]["last_used_at"])
    assert abs((datetime.now(used.tzinfo) - used).total_seconds()) < 60


def test_last_used_at_is_written_at_most_once_a_minute(client, db, make_user, token_for):
    headers = token_for(make_user("labeler", "lena"))
    token_id = _rows(client, headers)["cli"]["id"]
    recent = _set_last_used(db, token_id, timedelta(seconds=30))
    assert client.get(ME, headers=headers).status_code == 200
    assert db.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id)) == recent
    old = _set_last_used(db, token_id, timedelta(minutes=2))
    assert client.get(ME, headers=headers).status_code == 200
    db.expire_all()
    assert db.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id)) > old


def test_revoking_in_this_process_ends_a_remembered_token_at_once(client, make_user, token_for):
    headers = token_for(make_user("labeler", "lena"))
    token_id = _rows(client, headers)["cli"]["id"]
    assert client.get(ME, headers=headers).status_code == 200  # now remembered
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 204
    assert client.get(ME, headers=headers).status_code == 401


def test_a_token_revoked_by_another_process_is_refused_within_the_bound(
    client, db, make_user, token_for
):
    lena = make_user("labeler", "lena")
    headers = token_for(lena)
    assert client.get(ME, headers=headers).status_code == 200  # now remembered
    # Another process (a second web worker, the CLI) revokes it: nothing here forgets it.
    db.execute(update(ApiToken).where(ApiToken.user_id == lena.id).values(revoked_at=func.now()))
    db.commit()
    time.sleep(token_cache.TTL_S)
    refused = client.get(ME, headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.text
