"""A screenshot of a Superset dashboard, logged in as a user would (headless Chromium).

Runs in Superset's virtualenv (it has Selenium) with Debian's `chromium` and
`chromedriver`. Chromium is started with its background networking off, so the page is
the only thing it loads; the test checks the server's log for requests it did not serve.

    python bi/screenshot.py URL DASHBOARD_SLUG OUT.png [--wait-for TEXT ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
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


def browser(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("slug")
    parser.add_argument("out")
    parser.add_argument("--wait-for", action="append", default=[])
    args = parser.parse_args()
    user = os.environ.get("BILLING_BI_ADMIN", "admin")
    password = os.environ.get("BILLING_BI_PASSWORD", "admin")
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            wait = WebDriverWait(driver, 120)
            driver.get(f"{args.url}/login/")
            wait.until(expected_conditions.presence_of_element_located((By.ID, "username")))
            driver.find_element(By.ID, "username").send_keys(user)
            driver.find_element(By.ID, "password").send_keys(password + "\n")
            wait.until(lambda d: "/login" not in d.current_url)
            driver.get(f"{args.url}/superset/dashboard/{args.slug}/?standalone=1")
            for text in args.wait_for:
                try:
                    wait.until(lambda d, t=text: t in d.find_element(By.TAG_NAME, "body").text)
                except TimeoutException:
                    print(f"the dashboard never showed {text!r}", file=sys.stderr)
                    driver.save_screenshot(args.out)
                    return 1
            # Charts draw after their data arrives: wait until no spinner is left.
            wait.until(
                lambda d: not d.find_elements(By.CSS_SELECTOR, ".loading, [aria-label='Loading']")
            )
            time.sleep(2)
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
