"""The browser UI's entry page (admin_ui/templates). The agent and admin
workspaces arrive with the identity and IM issues."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from kefu.platform_state import platform

blp = Blueprint("ui", __name__)


@blp.get("/")
def index() -> Any:
    modules = sorted(platform().modules.values(), key=lambda m: m.name)
    return render_template("index.html", modules=modules)
