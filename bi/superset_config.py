"""Superset for finance, local only (`make bi`, DECISIONLOG D81).

Loaded by Superset through SUPERSET_CONFIG_PATH, in its own virtualenv. Nothing leaves the
machine: analytics off, and a content security policy that lets the page load scripts,
images, fonts and data from this server alone (Superset's default allows a tracking pixel
and map tiles). No cache: every chart query reads the published marts as they are now, so
a new build shows at the next page load.

The invoice documents (`billing invoice-pdf`) are served to logged-in users under
/billing/invoices/, from the published copy's `invoices/` folder: the Finance dashboard's
invoice list links each finalized invoice's PDF there.
"""

import os
import re
from pathlib import Path

from flask import Blueprint, abort, redirect, request, send_from_directory
from flask_login import current_user
from werkzeug.exceptions import NotFound

BI_HOME = Path(os.environ["BILLING_BI_HOME"])
INVOICE_DOCUMENTS = Path(
    os.environ.get("BILLING_BI_INVOICES", BI_HOME.parent / "published" / "invoices")
)

SECRET_KEY = os.environ.get("BILLING_BI_SECRET_KEY", "local-only-change-me-for-a-shared-host")
SQLALCHEMY_DATABASE_URI = f"sqlite:///{BI_HOME / 'superset.db'}"

SCARF_ANALYTICS = False
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
CONTENT_SECURITY_POLICY_WARNING = False

NULL_CACHE = {"CACHE_TYPE": "NullCache"}
CACHE_CONFIG = NULL_CACHE
DATA_CACHE_CONFIG = NULL_CACHE
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 3600}
EXPLORE_FORM_DATA_CACHE_CONFIG = FILTER_STATE_CACHE_CONFIG

# The published marts are a local DuckDB file, opened read-only; Superset refuses local
# file databases unless told they are expected.
PREVENT_UNSAFE_DB_CONNECTIONS = False
SQLLAB_CTAS_NO_LIMIT = True
ROW_LIMIT = 50000
# Themes load no fonts from Google.
THEME_FONT_URL_ALLOWED_DOMAINS: list[str] = []

invoice_documents = Blueprint("billing_invoice_documents", __name__)


@invoice_documents.route("/billing/invoices/<path:name>")
def invoice_document(name: str):
    """One rendered invoice, PDF (downloaded) or HTML (shown), for a logged-in user only.
    send_from_directory refuses any name that leaves the folder."""
    if not current_user.is_authenticated:
        return redirect(f"/login/?next={request.path}")
    if not name.endswith((".pdf", ".html")):
        abort(404)
    try:
        return send_from_directory(
            INVOICE_DOCUMENTS, name, as_attachment=name.endswith(".pdf"), max_age=0
        )
    except NotFound:
        period = re.match(r"(\d{4}-\d{2})/[^/]+$", name)
        hint = (
            f"not rendered yet: run `billing invoice-pdf --period {period[1]}`\n"
            if period
            else "no such invoice document\n"
        )
        return hint, 404, {"Content-Type": "text/plain; charset=utf-8"}


BLUEPRINTS = [invoice_documents]
