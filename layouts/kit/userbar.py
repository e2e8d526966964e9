"""Who is signed in, with a sign-out button: the corner of every page a person uses.

Built per request from the session (Flask-Login's ``current_user``); outside a request
(Dash's validation layout) and for wall screens it is empty — nobody clicks on a wall.
Sign-out is a POST with the session's CSRF token, so another site cannot sign people out.
"""

from __future__ import annotations

import flask
import flask_login
from dash import dcc, html
from flask_wtf.csrf import generate_csrf


def user_bar() -> html.Div:
    if not flask.has_request_context():
        return html.Div(className="gh-user")
    who = flask_login.current_user
    role = getattr(who, "role", None)
    if role is None or role == "display":
        return html.Div(className="gh-user")
    return html.Div(
        className="gh-user",
        children=[
            html.Span(who.display_name, className="gh-user__name"),
            html.Span(who.role_label, className="gh-user__role"),
            html.Form(
                action="/logout", method="POST", className="gh-user__out",
                children=[
                    dcc.Input(type="hidden", name="csrf_token", value=generate_csrf()),
                    html.Button("退出", type="submit", className="gh-user__button"),
                ],
            ),
        ],
    )
