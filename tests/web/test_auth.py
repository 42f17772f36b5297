"""Sign-in, roles, CSRF and the session secret: enforced for every route, in one place."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import ADMIN, VIEWER, csrf_of, sign_in

PUBLIC = {"/health", "/login", "/static/<path:filename>"}


def _sample_url(rule: Any) -> str:
    """A concrete URL for a rule (any value for its variables)."""
    values = {name: ("1" if name == "try_number" else "x") for name in rule.arguments}
    url = rule.rule
    for name, value in values.items():
        url = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, url)
    return url


def test_every_route_but_health_login_and_static_refuses_anonymous_requests(anonymous: Any,
                                                                             app: Any) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.rule in PUBLIC:
            continue
        url = _sample_url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = anonymous.open(url, method=method)
            checked += 1
            if url.startswith("/api/"):
                assert response.status_code == 401, (method, url)
                assert response.headers["WWW-Authenticate"].startswith("Basic")
            elif method == "GET":
                assert response.status_code == 302, (method, url)
                assert response.headers["Location"].startswith("/login?next=")
            else:
                assert response.status_code in (400, 401), (method, url)  # no session: no token
            assert b"web_demo" not in response.data
    assert checked >= 25  # the walk saw the pages, the actions and the API


def test_public_routes_answer_without_signing_in(anonymous: Any) -> None:
    assert anonymous.get("/health").get_json() == {"status": "ok", "database": "ok"}
    assert b"Sign in" in anonymous.get("/login").data
    assert anonymous.get("/static/flux.css").status_code == 200
    assert anonymous.get("/static/vendor/dagre.min.js").status_code == 200


def test_an_unknown_url_also_needs_a_sign_in(anonymous: Any) -> None:
    assert anonymous.get("/no/such/page").status_code == 302


def test_sign_in_with_a_wrong_password_fails(anonymous: Any) -> None:
    token = csrf_of(anonymous.get("/login").get_data(as_text=True))
    response = anonymous.post("/login", data={"username": ADMIN[0], "password": "wrong",
                                              "csrf_token": token})
    assert response.status_code == 401
    assert b"Wrong user name or password" in response.data
    assert anonymous.get("/dags").status_code == 302


def test_sign_in_needs_the_login_forms_csrf_token(anonymous: Any) -> None:
    anonymous.get("/login")
    response = anonymous.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 400
    assert anonymous.get("/dags").status_code == 302


def test_sign_in_records_the_last_login(admin: Any) -> None:
    from flux_web.users import list_users

    by_name = {u.username: u for u in list_users()}
    assert by_name[ADMIN[0]].last_login is not None
    assert by_name[VIEWER[0]].last_login is None


@pytest.mark.parametrize("target", [
    "https://evil.example/",
    "//evil.example/path",
    "/\\evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "\\\\evil.example",
    "/ok\r\nLocation: https://evil.example",
])
def test_sign_in_never_redirects_off_site(anonymous: Any, target: str) -> None:
    token = csrf_of(anonymous.get("/login").get_data(as_text=True))
    response = anonymous.post("/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                              "csrf_token": token, "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/dags"


def test_sign_in_returns_to_the_page_asked_for(anonymous: Any) -> None:
    response = anonymous.get("/audit?event=trigger")
    assert response.headers["Location"] == "/login?next=/audit?event%3Dtrigger"
    token = csrf_of(anonymous.get(response.headers["Location"]).get_data(as_text=True))
    response = anonymous.post("/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                              "csrf_token": token, "next": "/audit?event=trigger"})
    assert response.headers["Location"] == "/audit?event=trigger"


def test_sign_out_ends_the_session(admin: Any) -> None:
    assert admin.get("/dags").status_code == 200
    assert admin.post("/logout").status_code == 302
    assert admin.get("/dags").status_code == 302


def test_sign_out_needs_the_csrf_token(admin: Any) -> None:
    assert admin.http.post("/logout").status_code == 400
    assert admin.get("/dags").status_code == 200


def test_a_deleted_user_is_signed_out_at_once(admin: Any) -> None:
    from flux_web.users import delete_user

    delete_user(ADMIN[0])
    assert admin.get("/dags").status_code == 302


def test_a_role_change_applies_at_once(app: Any, demo_dag: Any, viewer: Any) -> None:
    from sqlalchemy import update

    from flux.db import session_scope
    from flux.models import User

    assert viewer.post("/dags/web_demo/paused", {"paused": "true"}).status_code == 403
    with session_scope() as session:
        session.execute(update(User).where(User.username == VIEWER[0]).values(role="admin"))
    assert viewer.post("/dags/web_demo/paused", {"paused": "true"}).status_code == 302


def test_a_post_without_the_csrf_token_is_refused(admin: Any, demo_dag: Any) -> None:
    response = admin.http.post("/dags/web_demo/paused", data={"paused": "true"})
    assert response.status_code == 400
    assert b"CSRF" in response.data
    response = admin.http.post("/dags/web_demo/paused", data={"paused": "true", "csrf_token": "forged"})
    assert response.status_code == 400
    from flux.db import session_scope
    from flux.models import DagModel

    with session_scope() as session:
        assert session.get(DagModel, "web_demo").is_paused is False


def test_another_sessions_token_is_refused(app: Any, admin: Any, demo_dag: Any) -> None:
    other = sign_in(app, *ADMIN)
    assert other.csrf != admin.csrf
    response = admin.http.post("/dags/web_demo/paused", data={"paused": "true", "csrf_token": other.csrf})
    assert response.status_code == 400


def test_the_api_with_a_session_needs_the_csrf_header(admin: Any, demo_dag: Any) -> None:
    response = admin.http.patch("/api/v1/dags/web_demo", json={"is_paused": True})
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["error"]
    assert admin.api("PATCH", "/api/v1/dags/web_demo", {"is_paused": True}).status_code == 200


@pytest.mark.parametrize("attempt", [
    ("POST", "/dags/web_demo/paused", {"paused": "true"}),
    ("POST", "/dags/web_demo/trigger", {"conf": "{}"}),
    ("GET", "/dags/web_demo/trigger", None),
    ("GET", "/dags/web_demo/clear?task_id=work&execution_date=2024-01-01", None),
    ("POST", "/dags/web_demo/clear", {"task_id": "work", "execution_date": "2024-01-01"}),
    ("POST", "/dags/web_demo/tasks/work/2024-01-01T00:00:00/mark", {"state": "success"}),
])
def test_a_viewer_may_not_act(viewer: Any, demo_runs: Any, attempt: tuple[str, str, Any]) -> None:
    method, url, data = attempt
    response = viewer.post(url, data) if method == "POST" else viewer.get(url)
    assert response.status_code == 403
    assert b"admin role" in response.data
    from flux.db import session_scope
    from flux.models import AuditLog, DagRun

    with session_scope() as session:
        assert session.query(AuditLog).count() == 0
        assert session.query(DagRun).filter(DagRun.run_type == "manual").count() == 0


@pytest.mark.parametrize("call", [
    ("PATCH", "/api/v1/dags/web_demo", {"is_paused": True}),
    ("POST", "/api/v1/dags/web_demo/runs", {}),
    ("POST", "/api/v1/dags/web_demo/clear", {"task_ids": ["work"]}),
    ("POST", "/api/v1/dags/web_demo/tasks/work/instances/2024-01-01/state", {"state": "success"}),
])
def test_a_viewer_may_not_act_through_the_api(viewer: Any, demo_runs: Any, call: Any) -> None:
    method, url, body = call
    response = viewer.api(method, url, body)
    assert response.status_code == 403
    assert "admin role" in response.get_json()["error"]


def test_a_viewer_sees_no_action_buttons(viewer: Any, demo_runs: Any) -> None:
    page = viewer.get("/dags/web_demo/tasks/work/2024-01-01T00:00:00").get_data(as_text=True)
    assert "Mark success" not in page and "Clear…" not in page
    assert "Trigger run" not in viewer.get("/dags/web_demo/tree").get_data(as_text=True)


def _basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_http_basic_credentials_open_the_api(anonymous: Any, demo_dag: Any) -> None:
    response = anonymous.get("/api/v1/dags", headers=_basic(*VIEWER))
    assert response.status_code == 200
    assert [d["dag_id"] for d in response.get_json()["dags"]] == ["web_demo"]
    assert anonymous.get("/api/v1/dags", headers=_basic(VIEWER[0], "wrong")).status_code == 401
    assert anonymous.get("/api/v1/dags", headers={"Authorization": "Basic !!!"}).status_code == 401
    assert anonymous.get("/api/v1/dags", headers=_basic("nobody", "x")).status_code == 401


def test_basic_credentials_need_no_csrf_token_but_a_json_body(anonymous: Any, demo_dag: Any) -> None:
    response = anonymous.patch("/api/v1/dags/web_demo", json={"is_paused": True},
                               headers=_basic(*ADMIN))
    assert response.status_code == 200 and response.get_json()["is_paused"] is True
    # A form post (what another site could forge) is refused.
    response = anonymous.patch("/api/v1/dags/web_demo", data={"is_paused": "false"},
                               headers=_basic(*ADMIN))
    assert response.status_code == 415


def test_the_session_secret_is_generated_once_per_installation(flux_env: Path, users: None) -> None:
    import tomllib

    from flux import config
    from flux_web.app import create_app

    first = create_app().secret_key
    stored = tomllib.loads((flux_env / "flux.toml").read_text())["webserver"]["secret_key"]
    assert stored == first and len(first) >= 64
    config.reset_config()
    assert create_app().secret_key == first  # read back, not generated again


def test_two_installations_get_different_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flux import config
    from flux_web.app import secret_key

    keys = []
    for name in ("one", "two"):
        home = tmp_path / name
        home.mkdir()
        monkeypatch.setenv("FLUX_HOME", str(home))
        config.reset_config()
        keys.append(secret_key())
    assert keys[0] != keys[1]


def test_a_cookie_signed_with_another_secret_is_not_a_session(app: Any, flux_env: Path) -> None:
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    other = Flask("other")
    other.secret_key = "not-this-installations-secret"
    forged = SecureCookieSessionInterface().get_signing_serializer(other).dumps({"user_id": 1})
    client = app.test_client()
    client.set_cookie("flux_session", forged)
    assert client.get("/dags").status_code == 302


def test_security_headers(admin: Any) -> None:
    response = admin.get("/dags")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_admin_sees_the_action_buttons(admin: Any, demo_runs: Any) -> None:
    page = admin.get("/dags/web_demo/tasks/work/2024-01-01T00:00:00").get_data(as_text=True)
    assert "Mark success" in page and "Clear…" in page
    tree = admin.get("/dags/web_demo/tree").get_data(as_text=True)
    assert "Trigger run" in tree and 'title="Pause web_demo"' in tree
