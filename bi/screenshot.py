"""Screenshots of Superset as a user sees it, logged in, in headless Chromium.

Runs in Superset's virtualenv (it has Selenium) with Debian's `chromium` and
`chromedriver`. Chromium is started with its background networking off, so the page is
the only thing it loads.

    python bi/screenshot.py dashboard URL SLUG OUT.png [--wait-for TEXT ...]
    python bi/screenshot.py walkthrough URL OUT_DIR --customer NAME --invoice NUMBER

`walkthrough` is finance's path through the Finance dashboard, a picture per step: search
the invoice list for a customer (find-invoice.png), search the lines for one of their
invoice numbers (invoice-lines.png), then click that invoice's PDF link, which downloads
the document into OUT_DIR (download-pdf.png shows the list with the link).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,2200",
)


INVOICE_LIST = "Invoices (search by number or customer)"
INVOICE_LINES = "Invoice lines (search by invoice number)"


def browser(profile: str, downloads: str | None = None) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if downloads:
        options.add_experimental_option(
            "prefs",
            {"download.default_directory": downloads, "download.prompt_for_download": False},
        )
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    if downloads:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads}
        )
    return driver


def log_in(driver: webdriver.Chrome, wait: WebDriverWait, url: str, tries: int = 3) -> None:
    """Log in through the form, as a user does.

    The login page shows nothing when it refuses a user, so the credentials are first
    tried on Superset's API: a refusal ends at once and says so. On a busy machine a
    submit can still be lost (the keys reach the page before its form listens, or the
    answer is slow): the form is then filled again from a fresh load, up to `tries`
    times. A session that did take sends the fresh load on to the welcome page, which
    ends the wait too.
    """
    user = os.environ.get("BILLING_BI_ADMIN", "admin")
    password = os.environ.get("BILLING_BI_PASSWORD", "admin")
    refused(url, user, password)
    shown = ""
    for _ in range(tries):
        driver.get(f"{url}/login/")
        if "/login" not in driver.current_url:
            return
        wait.until(expected_conditions.element_to_be_clickable((By.ID, "password")))
        for field, value in (("username", user), ("password", password)):
            box = driver.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        driver.find_element(By.ID, "password").send_keys(Keys.ENTER)
        try:
            WebDriverWait(driver, 40).until(lambda d: "/login" not in d.current_url)
            return
        except TimeoutException:
            shown = " ".join(driver.find_element(By.TAG_NAME, "body").text.split())
    raise TimeoutException(f"still on the login page after {tries} tries, showing {shown!r}")


def refused(url: str, user: str, password: str) -> None:
    """Raise when Superset's API answers 401 to these credentials."""
    body = json.dumps({"username": user, "password": password, "provider": "db"}).encode()
    request = urllib.request.Request(
        f"{url}/api/v1/security/login", body, {"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(request, timeout=120).close()
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise TimeoutException(f"Superset refused {user!r} (its API answered 401)") from None
        raise


def settled(driver: webdriver.Chrome) -> bool:
    """Charts draw after their data arrives: no spinner is left."""
    return not driver.find_elements(By.CSS_SELECTOR, ".loading, [aria-label='Loading']")


def chart(driver: webdriver.Chrome, title: str):
    return driver.find_element(By.CSS_SELECTOR, f"[data-test-chart-name='{title}']")


def search(driver: webdriver.Chrome, wait: WebDriverWait, title: str, text: str) -> None:
    """Type into a table chart's search box, as a user would, and wait for the rows that
    match to be the only ones shown."""
    holder = chart(driver, title)
    box = holder.find_element(By.CSS_SELECTOR, "input[aria-label^='Search']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", holder)
    box.send_keys(text)
    wait.until(lambda d: matches_only(chart(d, title), text))
    time.sleep(1)


def matches_only(holder, text: str) -> bool:
    """Rows are shown and every one contains `text` (an empty table matches nothing)."""
    rows = holder.find_elements(By.CSS_SELECTOR, "tbody tr")
    return bool(rows) and all(text in row.text for row in rows)


def downloaded(folder: Path, name: str, wait: WebDriverWait) -> Path:
    """The file once Chromium has finished writing it (no .crdownload left)."""
    wait.until(lambda _: (folder / name).exists() and not list(folder.glob("*.crdownload")))
    return folder / name


def walkthrough(url: str, out: Path, customer: str, invoice: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile, tempfile.TemporaryDirectory() as downloads:
        driver = browser(profile, downloads)
        try:
            wait = WebDriverWait(driver, 120)
            log_in(driver, wait, url)
            driver.get(f"{url}/superset/dashboard/finance/?standalone=1")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-test-chart-name]"))
            wait.until(settled)
            search(driver, wait, INVOICE_LIST, customer)
            chart(driver, INVOICE_LIST).screenshot(str(out / "find-invoice.png"))
            search(driver, wait, INVOICE_LINES, invoice)
            chart(driver, INVOICE_LINES).screenshot(str(out / "invoice-lines.png"))
            link = chart(driver, INVOICE_LIST).find_element(
                By.CSS_SELECTOR, f"a[href$='/{invoice}.pdf']"
            )
            driver.execute_script("arguments[0].style.outline = '3px solid #d9480f';", link)
            chart(driver, INVOICE_LIST).screenshot(str(out / "download-pdf.png"))
            link.click()
            pdf = downloaded(Path(downloads), f"{invoice}.pdf", wait)
            shutil.copyfile(pdf, out / pdf.name)
        except TimeoutException as error:
            driver.save_screenshot(str(out / "timed-out.png"))
            print(f"the walkthrough stopped waiting: {error.msg or 'timeout'}", file=sys.stderr)
            return 1
        finally:
            driver.quit()
    return 0


def dashboard(url: str, slug: str, out: str, wait_for: list[str]) -> int:
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            wait = WebDriverWait(driver, 120)
            try:
                log_in(driver, wait, url)
            except TimeoutException as error:
                print(f"could not log in: {error.msg or 'timeout'}", file=sys.stderr)
                driver.save_screenshot(out)
                return 1
            driver.get(f"{url}/superset/dashboard/{slug}/?standalone=1")
            for text in wait_for:
                try:
                    wait.until(lambda d, t=text: t in d.find_element(By.TAG_NAME, "body").text)
                except TimeoutException:
                    print(f"the dashboard never showed {text!r}", file=sys.stderr)
                    driver.save_screenshot(out)
                    return 1
            wait.until(settled)
            time.sleep(2)
            driver.save_screenshot(out)
        finally:
            driver.quit()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("dashboard")
    one.add_argument("url")
    one.add_argument("slug")
    one.add_argument("out")
    one.add_argument("--wait-for", action="append", default=[])
    steps = commands.add_parser("walkthrough")
    steps.add_argument("url")
    steps.add_argument("out", type=Path)
    steps.add_argument("--customer", required=True)
    steps.add_argument("--invoice", required=True)
    args = parser.parse_args()
    if args.command == "walkthrough":
        return walkthrough(args.url, args.out, args.customer, args.invoice)
    return dashboard(args.url, args.slug, args.out, args.wait_for)


if __name__ == "__main__":
    sys.exit(main())
